/**
 * Runs in a worker thread: a `TypeChecker` whose caches (the standard
 * library, `@types/node`, Fastify's and the SDK's declarations, some 100 MB of
 * heap) live here, so the serving thread neither pauses for a check nor
 * carries that heap through its garbage collections.
 */
import { parentPort } from 'node:worker_threads';
import { type Diagnostic, saveTypeScriptCache, TypeChecker } from './typecheck.js';
import type { CheckRequest, CheckResponse } from './worker-protocol.js';

const checker = new TypeChecker();
const port = parentPort;
if (port === null) throw new Error('typecheck-worker must run in a worker thread');

port.on('message', (req: CheckRequest) => {
  let res: CheckResponse;
  try {
    let results = new Map<string, Diagnostic[]>();
    // no items: a warm-up ahead of the checks a start is about to ask for
    if (req.items.length === 0) checker.warmUp();
    else results = checker.checkMany(req.items);
    res = { id: req.id, ok: true, results: [...results] };
  } catch (err) {
    res = { id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  port.postMessage(res);
  // after the answer to a first real check (not a warm-up): the code it compiled is what the next checker starts with
  if (req.items.length > 0) setImmediate(saveTypeScriptCache);
});
