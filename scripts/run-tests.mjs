// Runs every test file under test/ with Node's test runner and tsx's loader, building dist/ first if stale.
// Node 20's runner does not discover .ts files by itself, so the list is built here.
//
// Time limits, so that a hang fails with a name instead of stalling the run:
// - TEST_TIMEOUT_MS (default 180 s): every test and hook that sets no `timeout` of its own
//   (scripts/test-time-limit.mjs); the failure names the test, and the file goes on.
// - TEST_FILE_TIMEOUT_MS (default 480 s): each test file as a whole (on Node 20 and 22 Node's `--test-timeout`, which it
//   applies per file; on Node 24+ the file's own process, see scripts/test-time-limit.mjs); the failure names the
//   file, whose process is ended.
// Arguments are substrings of file names to run (all files when none). TEST_CONCURRENCY: files run at once (2).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distStale } from './dist-fresh.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testDir = process.env.TEST_DIR ?? 'test';
const filter = process.argv.slice(2);
const files = readdirSync(path.resolve(root, testDir))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .sort()
  .map((f) => path.join(testDir, f));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

function ms(name, fallback) {
  const v = process.env[name] ?? String(fallback);
  if (!/^[1-9][0-9]*$/.test(v)) {
    console.error(`${name}: expected a positive number of milliseconds, got ${JSON.stringify(v)}`);
    process.exit(1);
  }
  return v;
}
const testTimeout = ms('TEST_TIMEOUT_MS', 180_000);
const fileTimeout = ms('TEST_FILE_TIMEOUT_MS', 480_000);
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
console.log(`# time limits: ${testTimeout / 1000} s per test and hook, ${fileTimeout / 1000} s per file; ${concurrency} files at once`);

// Tests that start server processes run dist/: build it first when the sources are newer.
const stale = distStale(root);
if (stale !== undefined) {
  console.log(`# building dist/: ${stale}`);
  const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

const limits = pathToFileURL(path.join(root, 'scripts', 'test-time-limit.mjs')).href;
// Node 20 and 22 apply `--test-timeout` to each file as a whole; Node 24 and later to each test, with nothing bounding a
// file: there each file's process bounds itself (scripts/test-time-limit.mjs, TEST_FILE_LIMIT_IN_FILE).
const limitPerFile = Number(process.versions.node.split('.')[0]) < 23;
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--import',
    limits,
    '--test',
    '--test-force-exit',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${limitPerFile ? fileTimeout : testTimeout}`,
    ...files,
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      NODE_ENV: 'test',
      TEST_TIMEOUT_MS: testTimeout,
      TEST_FILE_TIMEOUT_MS: fileTimeout,
      TEST_FILE_LIMIT_IN_FILE: limitPerFile ? '0' : '1',
    },
  },
);
process.exit(r.status ?? 1);
