// Preloaded (NODE_OPTIONS=--import) into a server process by test/serving-thread.test.ts. From SIGUSR2 on (sent
// once the node serves), records each synchronous file-system call of the main thread on a path under one of
// SYNC_PROBE_DIRS (the plugins and artifacts directories), each wait for a child process and each Atomics.wait
// (esbuild's synchronous API); writes them to SYNC_PROBE_OUT when the process exits (none expected: compiles,
// loads and registrations never block serving).
import childProcess from 'node:child_process';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';

const out = process.env.SYNC_PROBE_OUT;
if (isMainThread && out) {
  const dirs = (process.env.SYNC_PROBE_DIRS ?? '').split(path.delimiter).filter((d) => d !== '');
  const writeOut = fs.writeFileSync;
  const seen = [];
  let armed = false;
  const record = (call, target) => seen.push({ call, target, stack: (new Error().stack ?? '').split('\n').slice(3, 9) });
  const watched = (p) => {
    const s = p instanceof URL ? p.pathname : typeof p === 'string' ? p : p instanceof Buffer ? p.toString() : undefined;
    return s !== undefined && dirs.some((d) => s === d || s.startsWith(`${d}${path.sep}`)) ? s : undefined;
  };
  const wrap = (object, name, label = name) => {
    const original = object[name];
    if (typeof original !== 'function') return;
    const wrapped = function (target, ...rest) {
      if (armed) {
        const p = watched(target);
        if (p !== undefined) record(label, p);
      }
      return original.call(this, target, ...rest);
    };
    Object.assign(wrapped, original); // realpathSync.native and the like
    object[name] = wrapped;
  };
  for (const name of Object.keys(fs)) if (name.endsWith('Sync')) wrap(fs, name);
  wrap(fs.realpathSync, 'native', 'realpathSync.native');
  // What blocks the thread outright: a child process waited for, or Atomics.wait (esbuild's synchronous API
  // waits on its service thread that way)
  for (const name of ['execSync', 'execFileSync', 'spawnSync']) {
    const original = childProcess[name];
    childProcess[name] = function (...args) {
      if (armed) record(`child_process.${name}`, String(args[0]));
      return original.apply(this, args);
    };
  }
  const wait = Atomics.wait;
  Atomics.wait = (...args) => {
    if (armed) record('Atomics.wait', '');
    return wait(...args);
  };
  syncBuiltinESMExports(); // named imports of node:fs and node:child_process see the wrappers
  process.on('SIGUSR2', () => {
    armed = true;
  });
  process.on('exit', () => writeOut(out, JSON.stringify(seen)));
}
