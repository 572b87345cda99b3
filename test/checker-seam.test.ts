// The checker seam: the compiler checks through a `Checker` and cannot tell where it runs. The same plugins give
// the same outcome through each checker (in process, in a worker thread, in a child process): a clean plugin is
// built, a plugin with a type error fails with PH_ERR_COMPILE_TYPE naming file:line and writes nothing. The
// child process runs at the lowest CPU priority, without the host's secrets in its environment, and within the
// same limits as the worker (a hang and a heap exhaustion fail with PH_ERR_COMPILE_LIMIT; the checks queued
// behind go to a fresh process).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { type Checker, Compiler, InProcessChecker, ProcessTypeChecker, WorkerTypeChecker } from '../src/compiler/index.js';
import { isHostError } from '../src/errors/index.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { ROOT, tempDir } from './support/util.js';

const dirs: Array<{ cleanup(): void }> = [];
after(() => {
  for (const d of dirs) d.cleanup();
});

const CHECKERS: Array<[string, () => Checker]> = [
  ['in process', () => new InProcessChecker()],
  ['in a worker thread', () => new WorkerTypeChecker()],
  ['in a child process', () => new ProcessTypeChecker()],
];

/** This process's children whose command line contains `needle`, by pid. */
function children(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The nice value of a process (field 19 of /proc/PID/stat). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('one compiler, three checkers', () => {
  for (const [where, make] of CHECKERS) {
    test(`checked ${where}: a clean plugin is built; a type error fails with PH_ERR_COMPILE_TYPE and writes nothing`, {
      timeout: 120_000,
    }, async () => {
      const plugins = tempDir('ph-seam-plugins-');
      const artifacts = tempDir('ph-seam-artifacts-');
      dirs.push(plugins, artifacts);
      const good = writePlugin(plugins.dir, 'good', pluginSource({ name: 'good' }));
      const bad = writePlugin(
        plugins.dir,
        'bad',
        pluginSource({ name: 'bad', initialize: '      const n: number = "not a number"; void n;' }),
      );
      const checker = make();
      const compiler = new Compiler({ artifactsDir: artifacts.dir, pluginsDir: plugins.dir, typecheck: true, checker });
      try {
        const r = await compiler.compile(good);
        assert.equal(r.built, true);
        assert.equal(checker.running, true, 'the checker holds TypeScript after a check');
        await assert.rejects(
          compiler.compile(bad),
          (err: unknown) => isHostError(err, 'PH_ERR_COMPILE_TYPE') && /bad[/\\]main\.ts:\d+:\d+/.test((err as Error).message),
        );
        assert.deepEqual(readdirSync(artifacts.dir).filter((f) => f.startsWith(r.hash)).length, 1, 'only the clean plugin has an artifact');
      } finally {
        await compiler.close();
      }
      await assert.rejects(checker.checkMany([{ dir: good, entry: path.join(good, 'main.ts') }]), /closed/, 'closed means closed');
    });
  }
});

describe('the checker process', () => {
  const STAND_IN = path.join(ROOT, 'test', 'support', 'fake-checker-process.mjs');
  const item = (name: string) => ({
    dir: path.join(ROOT, '.no-such-plugins', name),
    entry: path.join(ROOT, '.no-such-plugins', name, 'main.ts'),
  });
  const limitError = (pattern: RegExp) => (err: unknown) =>
    isHostError(err, 'PH_ERR_COMPILE_LIMIT') && pattern.test((err as Error).message);

  test('runs at nice 19 with none of the host environment', async () => {
    process.env.PH_TEST_SECRET = 'must-not-reach-the-checker';
    const checker = new ProcessTypeChecker({ entry: STAND_IN });
    try {
      await checker.checkMany([item('one')]);
      const [pid] = children('fake-checker-process');
      assert.ok(pid !== undefined, 'the checker is a child process');
      assert.equal(niceOf(pid), 19);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      assert.doesNotMatch(environ, /PH_TEST_SECRET|must-not-reach/);
    } finally {
      delete process.env.PH_TEST_SECRET;
      await checker.close();
    }
    assert.deepEqual(children('fake-checker-process'), [], 'closing ends the process');
  });

  test('a hang fails with PH_ERR_COMPILE_LIMIT; the check queued behind it is answered by a fresh process', async () => {
    const checker = new ProcessTypeChecker({ entry: STAND_IN, timeoutMs: 3000 });
    try {
      const hung = checker.checkMany([item('hang')]);
      const queued = checker.checkMany([item('queued')]);
      await assert.rejects(hung, limitError(/the type check of hang did not finish within 3000 ms/));
      assert.deepEqual([...(await queued).keys()], [item('queued').dir]);
    } finally {
      await checker.close();
    }
  });

  test('a heap exhaustion fails with PH_ERR_COMPILE_LIMIT naming the cap; the checker goes on', async () => {
    const checker = new ProcessTypeChecker({ entry: STAND_IN, memoryMb: 64 });
    try {
      const exhausted = checker.checkMany([item('oom')]);
      const queued = checker.checkMany([item('queued')]);
      await assert.rejects(exhausted, limitError(/the type check of oom exhausted the checker's 64 MB heap/));
      assert.deepEqual([...(await queued).keys()], [item('queued').dir]);
    } finally {
      await checker.close();
    }
  });
});
