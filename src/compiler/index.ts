import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as esbuild from 'esbuild';
import { ARTIFACT_FORMAT, type Artifact, ArtifactFiles, artifactHeader, hasEntry } from '../artifacts/index.js';
import { ENTRY_FILES, findEntry, hashSource } from '../discovery/index.js';
import { HostError } from '../errors/index.js';
import type { Checker } from './checker.js';
import { assertInside, tsconfigFor } from './containment.js';
import { InProcessChecker } from './in-process-checker.js';
import type { Diagnostic } from './typecheck.js';
import { START_BATCH_IDLE_MS, WorkerTypeChecker } from './worker-checker.js';

export type { Artifact } from '../artifacts/index.js';
export type { Checker, CheckItem } from './checker.js';
export { InProcessChecker } from './in-process-checker.js';
export { ProcessTypeChecker } from './process-checker.js';
export type { TypeChecker } from './typecheck.js';
export { WorkerTypeChecker } from './worker-checker.js';

/** Modules the host provides to every plugin at run time. */
export const HOST_PROVIDED = ['fastify', 'plugin-host/sdk'] as const;

export interface CompileResult extends Artifact {
  entry: string;
  /** False when the artifact already existed for this content hash. */
  built: boolean;
  /** From the end of hashing: until the check was done, and until the bundle was (they run at the same time). */
  timings: { hashMs: number; typecheckMs: number; bundleMs: number };
}

/** What the manager and the admin need of a compiler: the seam tests replace. */
export interface PluginCompiler {
  /** Compiles the plugin in `dir` into an artifact; nothing of it runs on the serving thread once the host serves. */
  compile(dir: string): Promise<CompileResult>;
  /** As `compile`, resolving once bundled; `checked` settles with the type check (see `Compiler.compileAhead`). */
  compileAhead?(dir: string): Promise<{ result: CompileResult; checked: Promise<void> }>;
  /** Checks several plugins ahead, in one program, so the `compile` calls that follow find their check done. */
  prepare(dirs: readonly string[]): Promise<void>;
}

export interface CompilerOptions {
  artifactsDir: string;
  /** Root that error paths are shown relative to. */
  pluginsDir: string;
  typecheck: boolean;
  /**
   * Run type checks in a worker thread, so the serving thread never pauses for
   * one nor holds TypeScript. Off: checks run in process (the command line, tests).
   */
  checkInWorker?: boolean;
  /** A type-check worker idle for this long is ended (its memory returns whole); the next check starts one. */
  checkerIdleMs?: number;
  /** Limits of one check in the worker (see `WorkerTypeCheckerOptions`): defaults 60 s and 2048 MB. */
  checkTimeoutMs?: number;
  checkMemoryMb?: number;
  /**
   * Where checks run, when given: it replaces `checkInWorker` and the limits above (the compiler closes it in
   * `close`). The seam a checker in another process, or TypeScript 7's native one, plugs into.
   */
  checker?: Checker;
  /**
   * Asked before an artifact already in `ARTIFACTS_DIR` is used instead of a
   * build: false makes the compiler rebuild it (the server checks the file
   * against the digest the artifact store recorded).
   */
  trustCache?: (plugin: string, artifact: Artifact) => Promise<boolean>;
}

/**
 * Validates, type-checks and bundles plugins into content-addressed artifacts.
 * An unchanged source maps to the same hash and is not rebuilt. Every step is
 * asynchronous (hashing and artifact files through `fs/promises`, bundling
 * through esbuild's service); TypeScript is loaded only when a check needs it,
 * and in the server only in the type-check worker, which starts on the first
 * check and ends when idle: the serving thread never loads TypeScript.
 */
export class Compiler implements PluginCompiler {
  /** Where checks run (see `Checker`); none when checks are off. */
  private readonly checker: Checker | undefined;
  /**
   * Work started ahead by `prepare`, by source hash, consumed by `compile`: the type check of the batch
   * (undefined if the batch check failed: `compile` checks that plugin alone) and the plugin's bundle.
   */
  private readonly prepared = new Map<string, { diags: Promise<Diagnostic[] | undefined>; bundle: Promise<string> }>();
  private readonly files: ArtifactFiles;

  constructor(private readonly options: CompilerOptions) {
    this.files = new ArtifactFiles(options.artifactsDir);
    if (!options.typecheck) this.checker = undefined;
    else if (options.checker !== undefined) this.checker = options.checker;
    else if (options.checkInWorker) {
      this.checker = new WorkerTypeChecker({
        idleMs: options.checkerIdleMs,
        timeoutMs: options.checkTimeoutMs,
        memoryMb: options.checkMemoryMb,
      });
    } else this.checker = new InProcessChecker();
  }

  /** Checks `items` in one program, wherever the checker runs them. */
  private async checkMany(items: ReadonlyArray<{ dir: string; entry: string }>, idleMs?: number): Promise<Map<string, Diagnostic[]>> {
    if (this.checker === undefined) throw new Error('type checks are off');
    return this.checker.checkMany(items, idleMs);
  }

  /**
   * Starts the type-check worker ahead, while the host connects to its database and builds its routes,
   * when this looks like a first start: no artifact built here yet and something in the plugins
   * directory, so the start will check. Loading TypeScript and parsing the declarations every check
   * needs (about a second on one core) then overlaps the rest of the start. Otherwise nothing: a node
   * that compiles nothing never loads TypeScript.
   */
  warmUpIfFirstStart(): void {
    if (this.checker === undefined || this.files.hasAny() || !hasEntry(this.options.pluginsDir)) return;
    this.checker.warmUp(START_BATCH_IDLE_MS);
  }

  /** True while the checker holds a loaded TypeScript (its worker, its process, or this thread's). */
  get checkerRunning(): boolean {
    return this.checker?.running === true;
  }

  /** Stops the checker, if any. */
  async close(): Promise<void> {
    await this.checker?.close();
  }

  /**
   * Starts, for every plugin of `dirs` whose artifact is not built yet, a
   * type check of them all in one program (in the worker) and, meanwhile, the
   * bundle of each (esbuild's service), so that the `compile` calls that follow
   * (at start, one per plugin) find both under way or done. Cuts a cold start
   * with many plugins from one TypeScript program per plugin to one in all,
   * bundled while it checks. Resolves once that work is started; never
   * throws: a problem is reported by the `compile` of that plugin, which uses
   * a bundle only once its check has passed.
   */
  async prepare(dirs: readonly string[]): Promise<void> {
    const todo = await this.unchecked(dirs);
    if (todo.length === 0) return;
    // a failed batch (the worker died) leaves each compile() to check its plugin alone
    const results = this.checkMany(todo, START_BATCH_IDLE_MS).catch(() => undefined);
    for (const t of todo) {
      const bundle = this.bundle(t.entry, t.dir, t.hash);
      bundle.catch(() => undefined); // reported by compile(), if its check passes
      const diags = results.then((r) => (r === undefined ? undefined : (r.get(path.resolve(t.dir)) ?? [])));
      this.prepared.set(t.hash, { diags, bundle });
    }
  }

  /** Plugins of `dirs` with no built artifact and no check done yet. */
  private async unchecked(dirs: readonly string[]): Promise<Array<{ dir: string; entry: string; hash: string }>> {
    if (!this.options.typecheck) return [];
    const todo: Array<{ dir: string; entry: string; hash: string }> = [];
    for (const dir of dirs) {
      try {
        const entry = await findEntry(dir);
        if (entry === undefined) continue;
        const hash = await hashSource(dir);
        if (this.prepared.has(hash) || (await this.files.hasAsync(hash))) continue;
        todo.push({ dir, entry, hash });
      } catch {
        // reported by compile()
      }
    }
    return todo;
  }

  /**
   * Compiles the plugin in `dir`: an artifact already in the cache is used if
   * `trustCache` vouches for it (a file that fails the check is rebuilt);
   * otherwise type check (done ahead by `prepare`, or now), bundle, write.
   */
  async compile(dir: string): Promise<CompileResult> {
    const { result, checked } = await this.compileAhead(dir);
    await checked;
    return result;
  }

  /**
   * As `compile`, but resolves once the bundle is made, while the type check may still run: `checked`
   * settles when it is done (and the artifact file written, once it passed), and rejects with the
   * coded error of a failed check. A reload loads the new version beside the serving one meanwhile,
   * and swaps it in only once `checked` resolved.
   */
  async compileAhead(dir: string): Promise<{ result: CompileResult; checked: Promise<void> }> {
    const step = await this.locate(dir);
    if (step.cached !== undefined) {
      const trust = this.options.trustCache;
      if (trust === undefined || (await trust(path.basename(dir), step.cached))) return { result: step.cached, checked: Promise.resolve() };
    }
    const ahead = this.prepared.get(step.hash);
    this.prepared.delete(step.hash);
    // The check and the bundle run at the same time (the same content hash: a bundle made ahead is this
    // source's); the artifact file is written only once the check has passed.
    const bundling = ahead?.bundle ?? this.bundle(step.entry, dir, step.hash);
    bundling.catch(() => undefined); // reported below, after a type error if there is one
    const result: CompileResult = {
      hash: step.hash,
      path: this.files.pathOf(step.hash),
      bundle: '',
      format: ARTIFACT_FORMAT,
      entry: step.entry,
      built: true,
      timings: { hashMs: step.t1 - step.t0, typecheckMs: 0, bundleMs: 0 },
    };
    const checking = this.diagnostics(dir, step.entry, ahead?.diags).then((diags) => {
      result.timings.typecheckMs = performance.now() - step.t1;
      if (diags.length > 0) throw this.typeError(step.entry, diags);
    });
    checking.catch(() => undefined); // awaited below when the bundle fails, else by whoever takes `checked`
    try {
      result.bundle = await bundling;
    } catch (err) {
      await checking; // a type error explains a bundle error better than the bundler does
      throw err;
    }
    result.timings.bundleMs = performance.now() - step.t1;
    const checked = checking.then(async () => {
      await this.files.writeAsync(step.hash, result.bundle);
    });
    checked.catch(() => undefined);
    return { result, checked };
  }

  /** The check's diagnostics of one plugin: made ahead by `prepare`, or now; none when checks are off. */
  private async diagnostics(dir: string, entry: string, ahead: Promise<Diagnostic[] | undefined> | undefined): Promise<Diagnostic[]> {
    const made = await ahead;
    if (made !== undefined) return made;
    if (!this.options.typecheck) return [];
    return (await this.checkMany([{ dir, entry }])).get(path.resolve(dir)) ?? [];
  }

  /** Entry and content hash; the artifact itself when it is already built. */
  private async locate(dir: string): Promise<{ entry: string; hash: string; t0: number; t1: number; cached: CompileResult | undefined }> {
    const t0 = performance.now();
    const entry = await findEntry(dir);
    if (entry === undefined) {
      throw new HostError('PH_ERR_PLUGIN_NO_ENTRY', `${this.rel(dir)}: no entry file (expected one of ${ENTRY_FILES.join(', ')})`);
    }
    const hash = await hashSource(dir);
    const t1 = performance.now();
    const cached = await this.files.readAsync(hash);
    const hit =
      cached === undefined ? undefined : { ...cached, entry, built: false, timings: { hashMs: t1 - t0, typecheckMs: 0, bundleMs: 0 } };
    return { entry, hash, t0, t1, cached: hit };
  }

  private async bundle(entry: string, dir: string, hash: string): Promise<string> {
    // esbuild is loaded on the first bundle: a node that compiles nothing never loads it
    const { build } = await import('esbuild');
    let result: esbuild.BuildResult<{ write: false; metafile: true }>;
    try {
      result = await build({
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
        // what the bundle read is checked below: nothing outside the plugin's directory
        metafile: true,
        ...(await tsconfigFor(dir)),
      });
      await assertInside(dir, result.metafile);
    } catch (err) {
      if (err instanceof HostError) throw err;
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
