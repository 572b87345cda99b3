import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHostError } from '../src/errors/index.js';
import { moveWorker, type WorkerStatus } from '../src/runtime/supervised/status.js';

// A worker's status changes only through moveWorker: the moves a worker version makes are allowed, and a
// move out of a stopped or failed worker (a restart timer firing after an unload) is refused with a code.
const allowed: Array<[WorkerStatus, WorkerStatus]> = [
  ['up', 'restarting'],
  ['up', 'failed'],
  ['up', 'stopping'],
  ['restarting', 'up'],
  ['restarting', 'restarting'],
  ['restarting', 'failed'],
  ['restarting', 'stopping'],
  ['failed', 'stopping'],
  ['stopping', 'stopping'],
];
const refused: Array<[WorkerStatus, WorkerStatus]> = [
  ['stopping', 'up'],
  ['stopping', 'restarting'],
  ['failed', 'up'],
  ['failed', 'restarting'],
  ['stopping', 'failed'],
];

test('worker status moves', () => {
  for (const [from, to] of allowed) assert.equal(moveWorker('w', from, to), to, `${from} -> ${to}`);
  for (const [from, to] of refused) {
    assert.throws(
      () => moveWorker('w', from, to),
      (e: unknown) => isHostError(e, 'PH_ERR_ILLEGAL_TRANSITION'),
      `${from} -> ${to}`,
    );
  }
});
