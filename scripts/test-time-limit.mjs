// Loaded into every test process by scripts/run-tests.mjs (`--import`): gives every test and every hook that
// sets no `timeout` of its own the limit TEST_TIMEOUT_MS, so a test that never ends fails with its own name
// and the file goes on with the next test (its `after` hooks still run and stop what it started).
//
// Why a preload: Node 20's `--test-timeout` applies to each test file as a whole (a file is one test of the
// runner) and is not passed on to the tests inside it, which have no limit at all. node:test offers no
// other way to set a default; here each test object is reached when it is created (node:test's tests are
// async resources of type 'Test') and its `timeout`, when left unset (Infinity), reads as the limit.
// Suites (`describe`) are left unbounded: a limit there would bound all their tests together. The runner
// bounds each file with `--test-timeout`.
import { createHook } from 'node:async_hooks';

const limit = Number(process.env.TEST_TIMEOUT_MS);
if (Number.isInteger(limit) && limit > 0) {
  createHook({
    init(_id, type, _trigger, resource) {
      if (type !== 'Test') return;
      const kind = resource.constructor?.name;
      // the root of the file and suites stay unbounded; tests (`test`, `it`) and hooks (`before`, `after`, …) get the limit
      if (kind !== 'Test' && kind !== 'TestHook') return;
      let own;
      Object.defineProperty(resource, 'timeout', {
        configurable: true,
        enumerable: true,
        get() {
          const unset = own === undefined || own === null || own === Infinity;
          return unset && (kind === 'TestHook' || this.parent != null) ? limit : own;
        },
        set(v) {
          own = v;
        },
      });
    },
  }).enable();
}

// The file limit where Node does not bound a file (Node 24 and later apply `--test-timeout` to each test): each
// test file's process ends itself past TEST_FILE_TIMEOUT_MS, naming its file; the runner reports the file as
// failed, and its `exit` handlers (test/support/server-process.ts) kill the servers it started.
const fileLimit = Number(process.env.TEST_FILE_TIMEOUT_MS);
const inTestFile = process.env.NODE_TEST_CONTEXT?.startsWith('child') === true;
if (process.env.TEST_FILE_LIMIT_IN_FILE === '1' && inTestFile && Number.isInteger(fileLimit) && fileLimit > 0) {
  setTimeout(() => {
    process.stderr.write(`test file timed out after ${fileLimit}ms: ${process.argv[1]}\n`);
    process.exit(1);
  }, fileLimit).unref();
}
