import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as esbuild from 'esbuild';
import { HostError } from '../errors/index.js';
import { SDK_VERSION } from '../sdk/index.js';
import { type Diagnostic, TypeChecker } from './typecheck.js';
import { WorkerTypeChecker } from './worker-checker.js';

export { TypeChecker } from './typecheck.js';

/** Entry files, in order of preference. */
export const ENTRY_FILES = ['main.ts', 'plugin.ts', 'index.ts'] as const;

/**
 * Artifact format: CommonJS bundle with `fastify` and the SDK external. Part of
 * every artifact's hash and first line, so an artifact built by an
 * incompatible host is rebuilt rather than loaded. v2: `import()` lowered to the require shim.
 */
export const ARTIFACT_FORMAT = `cjs-v2;sdk=${SDK_VERSION.split('.')[0]};node=${process.versions.node.split('.')[0]};esbuild=${esbuild.version}`;
const HEADER_PREFIX = '/* plugin-host artifact ';

/** Modules the host provides to every plugin at run time. */
export const HOST_PROVIDED = ['fastify', 'plugin-host/sdk'] as const;

export interface Artifact {
  hash: string;
  /** Path of the artifact file in `ARTIFACTS_DIR`. */
  path: string;
  bundle: string;
  format: string;
}

export interface CompileResult extends Artifact {
  entry: string;
  /** False when the artifact already existed for this content hash. */
  built: boolean;
  timings: { hashMs: number; typecheckMs: number; bundleMs: number };
}

export interface CompilerOptions {
  artifactsDir: string;
  /** Root that error paths are shown relative to. */
  pluginsDir: string;
  typecheck: boolean;
  /**
   * Run the type checks of `compileAsync` in a worker thread once serving, so the
   * serving thread never pauses for one. Off: checks run in process.
   */
  checkInWorker?: boolean;
}

export function findEntry(dir: string): string | undefined {
  for (const f of ENTRY_FILES) {
    const p = path.join(dir, f);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  return undefined;
}

/** Files that decide an artifact's content: everything in the plugin directory but dot-files and node_modules. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Content hash of a plugin source tree plus everything about the host that shapes the artifact. */
export function hashSource(dir: string): string {
  const h = createHash('sha256');
  h.update(ARTIFACT_FORMAT);
  for (const f of sourceFiles(dir)) {
    h.update('\0');
    h.update(path.relative(dir, f));
    h.update('\0');
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 32);
}

export function artifactHeader(format: string, hash: string): string {
  return `${HEADER_PREFIX}format=${format} hash=${hash} */\n`;
}

/** Reads the format recorded in an artifact's first line. */
export function artifactFormatOf(bundle: string): string | undefined {
  if (!bundle.startsWith(HEADER_PREFIX)) return undefined;
  const line = bundle.slice(0, bundle.indexOf('\n'));
  return /format=(\S+)/.exec(line)?.[1];
}

/**
 * Validates, type-checks and bundles plugins into content-addressed artifacts.
 * An unchanged source maps to the same hash and is not rebuilt.
 */
export class Compiler {
  private checkerInProcess: TypeChecker | undefined;
  private readonly worker: WorkerTypeChecker | undefined;
  /** Type-check results computed ahead by `prepare`, by source hash; consumed by `compile`. */
  private readonly prechecked = new Map<string, Diagnostic[]>();

  constructor(private readonly options: CompilerOptions) {
    mkdirSync(options.artifactsDir, { recursive: true });
    if (options.typecheck && options.checkInWorker) this.worker = new WorkerTypeChecker();
  }

  /** The in-process checker, created on first use (the worker has its own). */
  private get checker(): TypeChecker {
    this.checkerInProcess ??= new TypeChecker();
    return this.checkerInProcess;
  }

  /**
   * Start-up is over: drop the in-process checker (its caches go back to the
   * heap; later checks run in the worker) and start the worker now, so the
   * first reload does not wait for it to load TypeScript.
   */
  servingStarted(): void {
    if (this.worker === undefined) return;
    this.checkerInProcess = undefined;
    this.worker.start();
  }

  /** Stops the type-check worker, if any. */
  async close(): Promise<void> {
    await this.worker?.close();
  }

  artifactPath(hash: string): string {
    // a hash comes from the database and becomes a file name: it must never leave the artifacts directory
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(hash)) {
      throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `artifact hash ${JSON.stringify(hash)} is not a content hash`);
    }
    return path.join(this.options.artifactsDir, `${hash}.cjs`);
  }

  /** Reads a cached artifact file if present and compatible. */
  readArtifact(hash: string): Artifact | undefined {
    const p = this.artifactPath(hash);
    if (!existsSync(p)) return undefined;
    const bundle = readFileSync(p, 'utf8');
    if (artifactFormatOf(bundle) !== ARTIFACT_FORMAT) return undefined;
    return { hash, path: p, bundle, format: ARTIFACT_FORMAT };
  }

  /** Stores an artifact fetched from the database so later starts find it on disk. */
  storeArtifact(hash: string, bundle: string): Artifact {
    const p = this.artifactPath(hash);
    writeAtomic(p, bundle);
    return { hash, path: p, bundle, format: artifactFormatOf(bundle) ?? 'unknown' };
  }

  /**
   * Type-checks, in one program, every plugin of `dirs` whose artifact is not
   * built yet, so that the `compile` calls that follow (at start, one per
   * plugin) find their check done. Cuts a cold start with many plugins from
   * one TypeScript program per plugin to one in all. Never throws: a problem
   * is reported by the `compile` of that plugin.
   */
  prepare(dirs: readonly string[]): void {
    const todo = this.unchecked(dirs);
    if (todo.length === 0) return;
    try {
      this.storePrechecked(todo, this.checker.checkMany(todo));
    } catch {
      // fall back to checking each plugin in compile()
    }
  }

  /** Plugins of `dirs` with no built artifact and no check done yet. */
  private unchecked(dirs: readonly string[]): Array<{ dir: string; entry: string; hash: string }> {
    if (!this.options.typecheck) return [];
    const todo: Array<{ dir: string; entry: string; hash: string }> = [];
    for (const dir of dirs) {
      try {
        const entry = findEntry(dir);
        if (entry === undefined) continue;
        const hash = hashSource(dir);
        if (this.prechecked.has(hash) || existsSync(this.artifactPath(hash))) continue;
        todo.push({ dir, entry, hash });
      } catch {
        // reported by compile()
      }
    }
    return todo;
  }

  private storePrechecked(todo: Array<{ dir: string; hash: string }>, results: Map<string, Diagnostic[]>): void {
    for (const t of todo) this.prechecked.set(t.hash, results.get(path.resolve(t.dir)) ?? []);
  }

  /** Compiles in process (the command line, tests). The server uses `compileAsync`. */
  compile(dir: string): CompileResult {
    const step = this.locate(dir);
    if ('cached' in step) return step.cached;
    const pre = this.takePrechecked(step.hash);
    const diags = this.options.typecheck ? (pre ?? this.checker.check(dir, step.entry)) : [];
    return this.finish(dir, step, diags);
  }

  /** Like `compile`, with the type check in the worker thread when there is one. */
  async compileAsync(dir: string): Promise<CompileResult> {
    if (this.worker === undefined) return this.compile(dir);
    const step = this.locate(dir);
    if ('cached' in step) return step.cached;
    let diags = this.takePrechecked(step.hash);
    if (diags === undefined && this.options.typecheck) {
      diags = (await this.worker.checkMany([{ dir, entry: step.entry }])).get(path.resolve(dir)) ?? [];
    }
    return this.finish(dir, step, diags ?? []);
  }

  private takePrechecked(hash: string): Diagnostic[] | undefined {
    const pre = this.prechecked.get(hash);
    this.prechecked.delete(hash);
    return pre;
  }

  /** Entry and content hash; the artifact itself when it is already built. */
  private locate(dir: string): { cached: CompileResult } | { entry: string; hash: string; t0: number; t1: number } {
    const t0 = performance.now();
    const entry = findEntry(dir);
    if (entry === undefined) {
      throw new HostError('PH_ERR_PLUGIN_NO_ENTRY', `${this.rel(dir)}: no entry file (expected one of ${ENTRY_FILES.join(', ')})`);
    }
    const hash = hashSource(dir);
    const t1 = performance.now();
    const cached = this.readArtifact(hash);
    if (cached !== undefined) {
      return { cached: { ...cached, entry, built: false, timings: { hashMs: t1 - t0, typecheckMs: 0, bundleMs: 0 } } };
    }
    return { entry, hash, t0, t1 };
  }

  /** Refuses on type errors, else bundles and writes the artifact. */
  private finish(dir: string, step: { entry: string; hash: string; t0: number; t1: number }, diags: Diagnostic[]): CompileResult {
    if (diags.length > 0) throw this.typeError(step.entry, diags);
    const t2 = performance.now();
    const bundle = this.bundle(step.entry, dir, step.hash);
    const t3 = performance.now();
    const p = this.artifactPath(step.hash);
    writeAtomic(p, bundle);
    return {
      hash: step.hash,
      path: p,
      bundle,
      format: ARTIFACT_FORMAT,
      entry: step.entry,
      built: true,
      timings: { hashMs: step.t1 - step.t0, typecheckMs: t2 - step.t1, bundleMs: t3 - t2 },
    };
  }

  private bundle(entry: string, dir: string, hash: string): string {
    let result: esbuild.BuildResult<{ write: false }>;
    try {
      result = esbuild.buildSync({
        entryPoints: [entry],
        absWorkingDir: dir,
        bundle: true,
        write: false,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        external: [...HOST_PROVIDED],
        logLevel: 'silent',
        sourcemap: false,
        legalComments: 'none',
        charset: 'utf8',
        // The bundle is evaluated as a function (no module loader behind it): `import()` of a module left
        // external (node builtins, fastify, the SDK) must go through the host's require shim.
        supported: { 'dynamic-import': false },
      });
    } catch (err) {
      const failure = err as esbuild.BuildFailure;
      const first = failure.errors?.[0];
      if (first === undefined)
        throw new HostError('PH_ERR_COMPILE_SYNTAX', `${this.rel(entry)}: ${(err as Error).message}`, { cause: err });
      const loc = first.location;
      const where = loc ? `${this.rel(path.resolve(dir, loc.file))}:${loc.line}:${loc.column + 1}` : this.rel(entry);
      const code = /Could not resolve/.test(first.text) ? 'PH_ERR_COMPILE_RESOLVE' : 'PH_ERR_COMPILE_SYNTAX';
      const more = (failure.errors?.length ?? 1) > 1 ? ` (and ${(failure.errors?.length ?? 1) - 1} more)` : '';
      throw new HostError(code, `${where}: ${first.text}${more}`, {
        cause: err,
        details: { file: loc?.file, line: loc?.line, column: loc ? loc.column + 1 : undefined },
      });
    }
    const text = result.outputFiles[0]?.text ?? '';
    return artifactHeader(ARTIFACT_FORMAT, hash) + text;
  }

  private typeError(entry: string, diags: Diagnostic[]): HostError {
    const first = diags[0] as Diagnostic;
    const where = (d: Diagnostic) => (d.file === undefined ? this.rel(entry) : `${this.rel(d.file)}:${d.line}:${d.column}`);
    const lines = diags.slice(0, 5).map((d) => `${where(d)}: ${d.message}`);
    if (diags.length > 5) lines.push(`(and ${diags.length - 5} more)`);
    const noFactory = first.factoryCheck && first.tsCode === 2305;
    const syntax = first.tsCode >= 1000 && first.tsCode < 2000;
    // 2307/2792: "Cannot find module" — an import of a package that is not installed (or a missing local file)
    const unresolved = !first.factoryCheck && (first.tsCode === 2307 || first.tsCode === 2792);
    const code = noFactory
      ? 'PH_ERR_LOAD_NO_FACTORY'
      : syntax
        ? 'PH_ERR_COMPILE_SYNTAX'
        : unresolved
          ? 'PH_ERR_COMPILE_RESOLVE'
          : 'PH_ERR_COMPILE_TYPE';
    const message = noFactory ? `${this.rel(entry)}: does not export newPlugin()` : lines.join('\n');
    return new HostError(code, message, {
      details: {
        diagnostics: diags
          .slice(0, 20)
          .map((d) => ({ file: d.file && this.rel(d.file), line: d.line, column: d.column, message: d.message })),
      },
    });
  }

  private rel(p: string): string {
    const r = path.relative(this.options.pluginsDir, p);
    return r.startsWith('..') ? p : r;
  }
}

function writeAtomic(p: string, content: string): void {
  // write-then-rename: a crash mid-write never leaves a truncated artifact under its final name
  const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
  const half = testPauseMidWrite(content);
  if (half === undefined) writeFileSync(tmp, content);
  else {
    writeFileSync(tmp, content.slice(0, half));
    pauseForTest(tmp);
    appendFileSync(tmp, content.slice(half));
  }
  renameSync(tmp, p);
}

/**
 * Test seam, off unless NODE_ENV=test and PLUGIN_HOST_TEST_PAUSE_ARTIFACT_WRITE is set: an artifact whose
 * content contains that text is written in two halves, and the process stops between them (for at most 60 s),
 * so a test can kill it in the middle of writing an artifact (test/shutdown.test.ts); the file being written
 * is named on stderr. Returns where to split.
 */
function testPauseMidWrite(content: string): number | undefined {
  const marker = process.env.NODE_ENV === 'test' ? process.env.PLUGIN_HOST_TEST_PAUSE_ARTIFACT_WRITE : undefined;
  if (marker === undefined || marker === '' || !content.includes(marker)) return undefined;
  return Math.floor(content.length / 2);
}

function pauseForTest(file: string): void {
  process.stderr.write(`plugin-host: test pause in the middle of writing ${file}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}
