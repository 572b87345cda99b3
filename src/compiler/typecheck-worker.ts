/**
 * Runs in a worker thread: a `TypeChecker` whose caches (the standard
 * library, `@types/node`, Fastify's and the SDK's declarations, some 100 MB of
 * heap) live here, so the serving thread neither pauses for a check nor
 * carries that heap through its garbage collections.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { TypeChecker } from './typecheck.js';
import type { CheckRequest, CheckResponse } from './worker-protocol.js';

/** The checker's nice value: below the serving thread's (0), which requests should never wait behind. */
const CHECK_NICE = 10;

/**
 * On Linux a thread has a priority of its own: this one yields the CPU to the
 * serving thread, so under full load a reload's check takes spare CPU instead
 * of requests' (an idle machine checks as fast as before). Best effort.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, CHECK_NICE);
  } catch {
    // not Linux, or not allowed: the same priority as the serving thread
  }
}

lowerPriority();
const checker = new TypeChecker();
const port = parentPort;
if (port === null) throw new Error('typecheck-worker must run in a worker thread');

port.on('message', (req: CheckRequest) => {
  let res: CheckResponse;
  try {
    const results = checker.checkMany(req.items);
    res = { id: req.id, ok: true, results: [...results] };
  } catch (err) {
    res = { id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  port.postMessage(res);
});
