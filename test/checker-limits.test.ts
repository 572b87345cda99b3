// The type checker's limits: a check that never ends or exhausts the checker's heap fails with
// PH_ERR_COMPILE_LIMIT, the checker is restarted, and the checks queued behind it are answered (a stand-in
// worker makes the hang and the exhaustion certain); and a real check past its time limit fails a compile
// with that code and writes nothing.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Compiler } from '../src/compiler/index.js';
import { WorkerTypeChecker } from '../src/compiler/worker-checker.js';
import { isHostError } from '../src/errors/index.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { ROOT, tempDir } from './support/util.js';

const STAND_IN = pathToFileURL(path.join(ROOT, 'test', 'support', 'fake-checker-worker.mjs'));
const item = (name: string) => ({
  dir: path.join(ROOT, '.no-such-plugins', name),
  entry: path.join(ROOT, '.no-such-plugins', name, 'main.ts'),
});
const limitError = (pattern: RegExp) => (err: unknown) => isHostError(err, 'PH_ERR_COMPILE_LIMIT') && pattern.test((err as Error).message);

describe('type-check limits', () => {
  test('a check that never ends fails with PH_ERR_COMPILE_LIMIT; the one queued behind it is answered by a fresh worker', async () => {
    const checker = new WorkerTypeChecker({ entry: STAND_IN, timeoutMs: 3000 });
    try {
      const hung = checker.checkMany([item('hang')]);
      const queued = checker.checkMany([item('queued')]);
      await assert.rejects(hung, limitError(/the type check of hang did not finish within 3000 ms/));
      assert.deepEqual([...(await queued).keys()], [item('queued').dir]);
      assert.deepEqual([...(await checker.checkMany([item('next')])).keys()], [item('next').dir], 'the checker goes on');
    } finally {
      await checker.close();
    }
  });

  test("a check that exhausts the worker's heap fails with PH_ERR_COMPILE_LIMIT; the process lives on, and so does the checker", async () => {
    const checker = new WorkerTypeChecker({ entry: STAND_IN, memoryMb: 64 });
    try {
      const exhausted = checker.checkMany([item('oom')]);
      const queued = checker.checkMany([item('queued')]);
      await assert.rejects(exhausted, limitError(/the type check of oom exhausted the checker's 64 MB heap/));
      assert.deepEqual([...(await queued).keys()], [item('queued').dir]);
    } finally {
      await checker.close();
    }
  });

  test('a real type check past its time limit fails the compile with PH_ERR_COMPILE_LIMIT and writes no artifact', async () => {
    const plugins = pluginsDirWithPowertable();
    const artifacts = tempDir('ph-artifacts-');
    // no check can answer within a millisecond (the worker alone takes longer to start)
    const compiler = new Compiler({
      artifactsDir: artifacts.dir,
      pluginsDir: plugins.dir,
      typecheck: true,
      checkInWorker: true,
      checkTimeoutMs: 1,
    });
    try {
      await assert.rejects(compiler.compile(path.join(plugins.dir, 'powertable')), limitError(/powertable did not finish within 1 ms/));
      assert.deepEqual(readdirSync(artifacts.dir), [], 'no artifact written');
    } finally {
      await compiler.close();
      plugins.cleanup();
      artifacts.cleanup();
    }
  });
});
