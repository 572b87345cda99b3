// The restart rule of worker and process plugins, without a worker: back-off doubling from 100 ms to 5 s, a
// crash loop (crashLimit deaths within crashWindowMs) ending the restarts, deaths outside the window forgotten.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHostError } from '../src/errors/index.js';
import { CrashPolicy } from '../src/runtime/supervised/crash-policy.js';

test('restarts back off from 100 ms to 5 s; the crash limit within the window ends them', () => {
  const p = new CrashPolicy({ crashLimit: 9, crashWindowMs: 60_000 });
  const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => p.death('x', 'exit', 'code 1', i));
  assert.deepEqual(
    delays.map((d) => ('retryInMs' in d ? d.retryInMs : 'failed')),
    [100, 200, 400, 800, 1600, 3200, 5000, 5000],
  );
  const last = p.death('x', 'exit', 'code 1', 9);
  assert.ok('failure' in last && isHostError(last.failure, 'PH_ERR_PLUGIN_CRASHED'), JSON.stringify(last));
  assert.equal(p.total, 9);
});

test('deaths older than the window are forgotten: a plugin that crashes now and then keeps restarting', () => {
  const p = new CrashPolicy({ crashLimit: 3, crashWindowMs: 1000 });
  for (let i = 0; i < 10; i++) {
    const d = p.death('x', 'stall', 'stalled', i * 2000);
    assert.deepEqual(d, { retryInMs: 100 }, `death ${i} is the first within its window`);
  }
  assert.equal(p.total, 10);
});
