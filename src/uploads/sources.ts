import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { PluginRepository } from '../db/index.js';
import { HostError } from '../errors/index.js';
import { pathExists } from '../fs-exists.js';
import { extract } from './files.js';
import { readTarGz, type TarEntry, type TarLimits } from './tar.js';
import { treeMatches } from './verify.js';

export interface SourceArchivesOptions {
  repo: PluginRepository;
  /** Host-owned directory the archives are unpacked in: `<root>/<archive hash>/<plugin name>/`. */
  root: string;
  limits: TarLimits;
}

/**
 * Source archives of uploaded plugins. The archive (a `tar.gz`) is stored in
 * the database by its SHA-256, beside the artifacts, so a node that never saw
 * the upload restores the source from it to recompile or reload; unpacked
 * copies live under `root`, one directory per archive, never inside
 * `PLUGINS_DIR` (discovery and watch mode do not see them).
 */
export class SourceArchives {
  constructor(private readonly o: SourceArchivesOptions) {}

  static hashOf(archive: Buffer): string {
    return createHash('sha256').update(archive).digest('hex');
  }

  /** Where the archive `hash` of plugin `name` is (or will be) unpacked. */
  dirOf(name: string, hash: string): string {
    return path.join(this.o.root, hash, name);
  }

  /** Checks an archive (refusing a hostile one with a coded 4xx error); nothing is written. */
  read(archive: Buffer): TarEntry[] {
    return stripCommonRoot(readTarGz(archive, this.o.limits));
  }

  /**
   * Unpacks checked entries into a fresh directory, then moves it into place
   * in one rename. An archive already unpacked (same hash) is reused only if
   * its tree still is exactly `entries`; one edited since is unpacked again.
   */
  async unpack(name: string, hash: string, entries: readonly TarEntry[]): Promise<string> {
    const dir = this.dirOf(name, hash);
    if (await pathExists(dir)) {
      if (await treeMatches(dir, entries)) return dir;
      // edited since it was unpacked: the stored archive is the truth
      await rm(path.dirname(dir), { recursive: true, force: true });
    }
    await mkdir(this.o.root, { recursive: true });
    const tmp = await mkdtemp(path.join(this.o.root, '.unpack-'));
    try {
      await extract(entries, path.join(tmp, name));
      await rename(tmp, path.dirname(dir)).catch(async (err: NodeJS.ErrnoException) => {
        // another upload or restore of the same archive got there first: theirs is the same content
        if (!(await pathExists(dir))) throw err;
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return dir;
  }

  /** Removes an unpacked archive (an upload that failed to compile or load). */
  async discard(hash: string): Promise<void> {
    await rm(path.join(this.o.root, hash), { recursive: true, force: true });
  }

  /** Stores the archive in the database (idempotent by hash). */
  store(name: string, hash: string, archive: Buffer): Promise<void> {
    return this.o.repo.artifacts.putSource({ hash, pluginName: name, archive });
  }

  /**
   * The unpacked source of a stored archive, for a compile: the archive is
   * read from the database and checked against its SHA-256 every time, and
   * this node's unpacked copy is used only while it matches it (see `unpack`).
   */
  async restore(name: string, hash: string): Promise<string> {
    const archive = await this.o.repo.artifacts.getSource(hash);
    if (archive === undefined) {
      throw new HostError('PH_ERR_PLUGIN_SOURCE_MISSING', `${name}: source archive ${hash.slice(0, 12)} is not in the database`);
    }
    if (SourceArchives.hashOf(archive) !== hash) {
      throw new HostError('PH_ERR_ARTIFACT_INTEGRITY', `${name}: source archive ${hash.slice(0, 12)} does not match its hash`);
    }
    return this.unpack(name, hash, this.read(archive));
  }
}

/**
 * An archive made with `tar -czf x.tgz NAME` holds the plugin under one top
 * directory; `push` packs the directory's content at the root. Both unpack to
 * the same tree: a single top directory with no file beside it is stripped.
 */
function stripCommonRoot(entries: TarEntry[]): TarEntry[] {
  const tops = new Set(entries.map((e) => e.path.split('/')[0]));
  const [top] = tops;
  if (tops.size !== 1 || top === undefined || entries.some((e) => e.path === top && e.type === 'file')) return entries;
  return entries.filter((e) => e.path !== top).map((e) => ({ ...e, path: e.path.slice(top.length + 1) }));
}
