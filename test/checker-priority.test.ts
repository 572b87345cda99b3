// The type-check worker yields the CPU to the serving thread: on Linux its thread runs at a lower priority (a
// higher nice value) than the thread that serves requests, so a reload under full load takes spare CPU only.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { WorkerTypeChecker } from '../src/compiler/worker-checker.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';

/** Nice value of each thread of this process, by thread id (field 19 of /proc/self/task/TID/stat). */
function niceByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // the command name may hold spaces: fields are counted after its closing parenthesis (field 3 onward)
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

test('the type-check worker runs below the serving thread', { skip: process.platform !== 'linux' }, async () => {
  const plugins = pluginsDirWithPowertable();
  const checker = new WorkerTypeChecker();
  try {
    const before = niceByThread();
    const results = await checker.checkMany([
      { dir: path.join(plugins.dir, 'powertable'), entry: path.join(plugins.dir, 'powertable', 'main.ts') },
    ]);
    assert.deepEqual([...results.values()].flat(), [], 'powertable checks clean');
    const after = niceByThread();
    assert.ok((after.get(process.pid) ?? 0) < 10, 'the serving (main) thread keeps its priority');
    const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === 10);
    assert.equal(lowered.length, 1, `one new thread, the checker's, at nice 10 (threads: ${JSON.stringify([...after])})`);
  } finally {
    await checker.close();
    plugins.cleanup();
  }
});
