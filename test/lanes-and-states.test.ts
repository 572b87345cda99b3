import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isHostError } from '../src/errors/index.js';
import { Lanes } from '../src/lanes/index.js';
import { createLogger } from '../src/logger.js';
import { canTransition, type PluginState, transition } from '../src/manager/index.js';

const log = createLogger('silent');

describe('plugin state machine', () => {
  test('legal moves pass and illegal ones are refused with a code', () => {
    const p: { name: string; state: PluginState } = { name: 'x', state: 'unloaded' };
    transition(p, 'loading', log, 'test');
    transition(p, 'serving', log, 'test');
    transition(p, 'reloading', log, 'test');
    transition(p, 'serving', log, 'test');
    transition(p, 'unloading', log, 'test');
    transition(p, 'unloaded', log, 'test');
    assert.equal(p.state, 'unloaded');
    assert.throws(
      () => transition(p, 'serving', log, 'skip loading'),
      (err: unknown) => isHostError(err, 'PH_ERR_ILLEGAL_TRANSITION'),
    );
    assert.equal(p.state, 'unloaded', 'a refused move changes nothing');
    assert.equal(canTransition('error', 'loading'), true);
    assert.equal(canTransition('error', 'serving'), false);
  });
});

describe('lanes', () => {
  test('one job in flight per key; a burst collapses into one re-run; keys run in parallel', async () => {
    const running = new Map<string, number>();
    let maxPerKey = 0;
    let maxOverall = 0;
    const runs: string[] = [];
    // each run waits for the test to let it finish, so what overlaps is decided by the test, not by timing
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const started = new Map<string, () => void>();
    const startedOnce = (key: string) => new Promise<void>((r) => started.set(key, r));
    const aStarted = startedOnce('a');
    const bStarted = startedOnce('b');
    const lanes = new Lanes(
      async (key) => {
        running.set(key, (running.get(key) ?? 0) + 1);
        maxPerKey = Math.max(maxPerKey, running.get(key) ?? 0);
        maxOverall = Math.max(
          maxOverall,
          [...running.values()].reduce((a, b) => a + b, 0),
        );
        runs.push(key);
        started.get(key)?.();
        await released;
        running.set(key, (running.get(key) ?? 1) - 1);
      },
      () => {},
    );
    const first = lanes.request('a');
    const other = lanes.request('b');
    await Promise.all([aStarted, bStarted]); // 'a' and 'b' are running now
    const burst = Array.from({ length: 20 }, () => lanes.request('a'));
    assert.deepEqual(runs, ['a', 'b'], 'the burst waits for the run in flight');
    release();
    await Promise.all([first, ...burst, other]);
    assert.equal(maxPerKey, 1);
    assert.equal(maxOverall, 2, 'a and b ran side by side');
    assert.equal(runs.filter((r) => r === 'a').length, 2, 'first run plus one collapsed re-run');
    assert.equal(lanes.active, 0);
  });

  test('a failing job is caught and the lane keeps working', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const lanes = new Lanes(
      async () => {
        n++;
        if (n === 1) throw new Error('boom');
      },
      (_k, err) => errors.push(err),
    );
    await lanes.request('k');
    await lanes.request('k');
    assert.equal(n, 2);
    assert.equal(errors.length, 1);
  });
});
