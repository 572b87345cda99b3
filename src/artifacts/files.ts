import {
  appendFileSync,
  existsSync,
  mkdirSync,
  opendirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathExists } from '../fs-exists.js';
import { assertArtifactHash } from '../model/index.js';
import { ARTIFACT_FORMAT, artifactFormatOf } from './format.js';

/** A compiled bundle: the bytes a runtime evaluates, named by content hash. */
export interface Artifact {
  hash: string;
  /** Path of the artifact file in `ARTIFACTS_DIR` (also the file name plugin stack frames show). */
  path: string;
  bundle: string;
  format: string;
}

/**
 * The disk half of the artifact store: one file per hash in `ARTIFACTS_DIR`,
 * written then renamed, so a crash never leaves a truncated artifact under
 * its final name.
 */
export class ArtifactFiles {
  /** Temporary files this process is writing now: the only `.tmp` files of its own pid that are not leftovers. */
  private readonly writing = new Set<string>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /**
   * Deletes the temporary files of writers that are gone: a process killed in
   * the middle of a write leaves `<hash>.cjs.<pid>.<ms>.tmp`. A file whose pid
   * is a live process other than this one is another writer's (a CLI sharing
   * the directory) and stays; the age rule of `sweep` collects it later. A
   * restarted container often gets the dead process's pid again, so a file of
   * this pid counts as a leftover unless this process is writing it.
   */
  removeLeftovers(): string[] {
    const deleted: string[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.tmp')) continue;
      const p = path.join(this.dir, f);
      if (!this.isLeftover(p)) continue;
      rmSync(p, { force: true });
      deleted.push(f);
    }
    return deleted;
  }

  private isLeftover(tmpPath: string): boolean {
    if (this.writing.has(tmpPath)) return false;
    const pid = Number(/\.cjs\.(\d+)\.\d+\.tmp$/.exec(tmpPath)?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return true;
    return !processIsAlive(pid);
  }

  private tempPathFor(p: string): string {
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    this.writing.add(tmp);
    return tmp;
  }

  pathOf(hash: string): string {
    assertArtifactHash(hash);
    return path.join(this.dir, `${hash}.cjs`);
  }

  has(hash: string): boolean {
    return existsSync(this.pathOf(hash));
  }

  /** Whether any artifact file is here (stops at the first one found). */
  hasAny(): boolean {
    return hasEntry(this.dir, (name) => name.endsWith('.cjs'));
  }

  hasAsync(hash: string): Promise<boolean> {
    return pathExists(this.pathOf(hash));
  }

  /** `read` without blocking the event loop. */
  async readAsync(hash: string): Promise<Artifact | undefined> {
    const p = this.pathOf(hash);
    let bundle: string;
    try {
      bundle = await readFile(p, 'utf8');
    } catch {
      return undefined;
    }
    if (artifactFormatOf(bundle) !== ARTIFACT_FORMAT) return undefined;
    return { hash, path: p, bundle, format: ARTIFACT_FORMAT };
  }

  /** `write` without blocking the event loop (still written, then renamed into place). */
  async writeAsync(hash: string, bundle: string): Promise<Artifact> {
    const p = this.pathOf(hash);
    if (testPauseMidWrite(bundle) !== undefined) this.writeAtomic(p, bundle);
    else {
      const tmp = this.tempPathFor(p);
      try {
        await writeFile(tmp, bundle);
        await rename(tmp, p);
      } finally {
        this.writing.delete(tmp);
      }
    }
    return { hash, path: p, bundle, format: artifactFormatOf(bundle) ?? 'unknown' };
  }

  /** The artifact file for `hash`, if present and built by a compatible host. */
  read(hash: string): Artifact | undefined {
    const p = this.pathOf(hash);
    if (!existsSync(p)) return undefined;
    const bundle = readFileSync(p, 'utf8');
    if (artifactFormatOf(bundle) !== ARTIFACT_FORMAT) return undefined;
    return { hash, path: p, bundle, format: ARTIFACT_FORMAT };
  }

  /**
   * Deletes artifact files older than `olderThan` whose hash `keep` does not
   * hold, and temporary files a crash left behind. Returns the names deleted.
   */
  sweep(keep: ReadonlySet<string>, olderThan: Date): string[] {
    const deleted: string[] = [];
    for (const f of readdirSync(this.dir)) {
      const hash = f.endsWith('.cjs') ? f.slice(0, -4) : undefined;
      const stale = f.endsWith('.tmp') || (hash !== undefined && !keep.has(hash));
      if (!stale) continue;
      const p = path.join(this.dir, f);
      try {
        const leftover = f.endsWith('.tmp') && this.isLeftover(p);
        if (!leftover && statSync(p).mtime >= olderThan) continue;
        rmSync(p, { force: true });
        deleted.push(f);
      } catch {
        // gone meanwhile
      }
    }
    return deleted;
  }

  remove(hash: string): void {
    rmSync(this.pathOf(hash), { force: true });
  }

  write(hash: string, bundle: string): Artifact {
    const p = this.pathOf(hash);
    this.writeAtomic(p, bundle);
    return { hash, path: p, bundle, format: artifactFormatOf(bundle) ?? 'unknown' };
  }

  private writeAtomic(p: string, content: string): void {
    // write-then-rename: a crash mid-write never leaves a truncated artifact under its final name
    const tmp = this.tempPathFor(p);
    try {
      const half = testPauseMidWrite(content);
      if (half === undefined) writeFileSync(tmp, content);
      else {
        writeFileSync(tmp, content.slice(0, half));
        pauseForTest(tmp);
        appendFileSync(tmp, content.slice(half));
      }
      renameSync(tmp, p);
    } finally {
      this.writing.delete(tmp);
    }
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, owned by another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// read when the module loads: the host leaves plugin code an environment reduced to PLUGIN_ENV_ALLOW once started
const TEST_PAUSE_MARKER = process.env.NODE_ENV === 'test' ? process.env.PLUGIN_HOST_TEST_PAUSE_ARTIFACT_WRITE : undefined;

/**
 * Test seam, off unless NODE_ENV=test and PLUGIN_HOST_TEST_PAUSE_ARTIFACT_WRITE is set: an artifact whose
 * content contains that text is written in two halves, and the process stops between them (for at most 60 s),
 * so a test can kill it in the middle of writing an artifact (test/shutdown.test.ts); the file being written
 * is named on stderr. Returns where to split.
 */
function testPauseMidWrite(content: string): number | undefined {
  const marker = TEST_PAUSE_MARKER;
  if (marker === undefined || marker === '' || !content.includes(marker)) return undefined;
  return Math.floor(content.length / 2);
}

function pauseForTest(file: string): void {
  process.stderr.write(`plugin-host: test pause in the middle of writing ${file}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}

/** Whether `dir` holds an entry whose name `match` accepts, reading no further than the first (false if unreadable). */
export function hasEntry(dir: string, match: (name: string) => boolean = () => true): boolean {
  try {
    const d = opendirSync(dir);
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) if (match(e.name)) return true;
    } finally {
      d.closeSync();
    }
  } catch {
    // unreadable: as if empty
  }
  return false;
}
