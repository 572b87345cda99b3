// The test runner's time limits (scripts/run-tests.mjs): a test that never ends fails with its own name after
// TEST_TIMEOUT_MS and the file goes on; a file that outlives TEST_FILE_TIMEOUT_MS fails with the file's name.
// Run against the fixture files of test/fixtures/runner with small limits, on Node 20 and 22 (TAP; Node bounds a file)
// and on Node 24+ (the spec reporter; a file's process bounds itself).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { cleanEnv } from './support/cli.js';
import { ROOT } from './support/util.js';

function runFixtures(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts', 'run-tests.mjs')],
      {
        cwd: ROOT,
        env: cleanEnv({ TEST_DIR: 'test/fixtures/runner', TEST_TIMEOUT_MS: '1500', TEST_FILE_TIMEOUT_MS: '15000', TEST_CONCURRENCY: '3' }),
        timeout: 90_000,
      },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), out: stdout + stderr }),
    );
  });
}

test('a hanging test fails with its name, the file goes on; a file past its limit fails with its name', async () => {
  const { code, out } = await runFixtures();
  assert.equal(code, 1, out);
  assert.match(out, /^# time limits: 1\.5 s per test and hook, 15 s per file/m);
  assert.match(out, /after hook of the hanging suite ran/, "the suite's after hook ran");
  if (/^TAP version/m.test(out)) {
    // Node 20 and 22: TAP, and Node's own per-file limit
    assert.match(out, /not ok \d+ - a test that never ends\n(?: {6}.*\n)*? {6}error: 'test timed out after 1500ms'/, out);
    assert.match(out, /^ {4}ok \d+ - the test after it still runs$/m, 'the next test of the file ran');
    assert.match(out, /not ok \d+ - \S*hangs-past-file-limit\.test\.ts\n(?: {2}.*\n)*? {2}error: 'test timed out after 15000ms'/, out);
    assert.match(out, /^ok \d+ - a quick test$/m, 'the other files pass');
    assert.match(out, /^# pass 4$/m);
  } else {
    // Node 24+: the spec reporter, and the file's own process ending itself (scripts/test-time-limit.mjs)
    assert.match(out, /^ {2}✖ a test that never ends \(/m, out);
    assert.match(out, /✖ a test that never ends \([^)]*\)\n {2}'test timed out after 1500ms'/, out);
    assert.match(out, /^ {2}✔ the test after it still runs/m, 'the next test of the file ran');
    assert.match(out, /test file timed out after 15000ms: \S*hangs-past-file-limit\.test\.ts/, out);
    assert.match(out, /^✖ \S*hangs-past-file-limit\.test\.ts \(/m, out);
    assert.match(out, /^✔ a quick test/m, 'the other files pass');
    assert.match(out, /^ℹ pass 4$/m);
  }
});
