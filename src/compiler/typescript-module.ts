import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import type * as TS from 'typescript';

const hostRequire = createRequire(import.meta.url);

/**
 * Where the code cache lives: `node_modules/.cache/plugin-host`, beside the `typescript` package the host
 * resolves. Whoever can write there can already change TypeScript itself, so the cache is trusted no more
 * than the code it caches (never in `ARTIFACTS_DIR`, whose files are checked against the database).
 */
function defaultCacheDir(): string | undefined {
  try {
    const pkg = hostRequire.resolve('typescript/package.json');
    return path.join(path.dirname(path.dirname(pkg)), '.cache', 'plugin-host');
  } catch {
    return undefined;
  }
}

export interface LoadedTypeScript {
  ts: typeof TS;
  /** Whether V8 took the cached code (false: none, or made by another Node, V8 or TypeScript). */
  cacheUsed: boolean;
  /**
   * Writes the code cache once, with what this process has compiled so far: called after the first
   * check, so the parser's, binder's and checker's functions are in it, not only the module's top level.
   * Never throws (a directory that cannot be written means no cache).
   */
  saveCache(): void;
}

/**
 * Loads TypeScript for the type checker, with a V8 code cache of its 9 MB module: the next checker (a
 * later start, a worker started again after an idle period) skips compiling the module and the functions
 * its first check runs, about 0.2 s of each checker start. Loaded with the CommonJS wrapper, not `import`:
 * an ES import of a CommonJS file first scans it for named exports (another 0.2 s). Any problem with the
 * cache falls back to a plain `require`.
 */
export function loadTypeScript(o: { cacheDir?: string | undefined } = {}): LoadedTypeScript {
  const dir = o.cacheDir ?? defaultCacheDir();
  try {
    const filename = hostRequire.resolve('typescript');
    // already loaded in this thread (by a `require` elsewhere): that copy, not a second one
    const loaded = hostRequire.cache[filename];
    if (loaded?.loaded === true) return { ts: loaded.exports as typeof TS, cacheUsed: false, saveCache() {} };
    const { version } = hostRequire('typescript/package.json') as { version: string };
    if (dir === undefined) throw new Error('no cache directory');
    const cacheFile = path.join(dir, `typescript-${version}-node${process.versions.node}-${process.arch}.v8cache`);
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // none yet
    }
    const script = new vm.Script(Module.wrap(readFileSync(filename, 'utf8')), { filename, cachedData });
    // a CommonJS module like any other, in `require.cache`: a `require('typescript')` in this thread gets it
    const mod = new Module(filename);
    mod.filename = filename;
    const init = script.runInThisContext() as (...args: unknown[]) => void;
    init.call(mod.exports, mod.exports, createRequire(filename), mod, filename, path.dirname(filename));
    mod.loaded = true;
    hostRequire.cache[filename] = mod;
    const cacheUsed = cachedData !== undefined && !script.cachedDataRejected;
    let saved = cacheUsed;
    return {
      ts: mod.exports as typeof TS,
      cacheUsed,
      saveCache() {
        if (saved) return;
        saved = true;
        try {
          mkdirSync(dir, { recursive: true });
          const tmp = `${cacheFile}.${process.pid}.tmp`;
          writeFileSync(tmp, script.createCachedData());
          renameSync(tmp, cacheFile);
        } catch {
          // not writable (a read-only install): every checker compiles TypeScript itself
        }
      },
    };
  } catch {
    return { ts: hostRequire('typescript') as typeof TS, cacheUsed: false, saveCache() {} };
  }
}
