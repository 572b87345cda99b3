import { type Diagnostic, saveTypeScriptCache, TypeChecker } from './typecheck.js';
import type { CheckRequest, CheckResponse } from './worker-protocol.js';

/**
 * The checker's side of the protocol, the same in a worker thread and in a child process: a `TypeChecker`
 * whose caches (the standard library, `@types/node`, Fastify's and the SDK's declarations, some 100 MB of
 * heap) live there, answering each request in order. `answer` sends the response; after the answer to a first
 * real check (not a warm-up), the code it compiled is saved for the next checker.
 */
export function checkHandler(answer: (res: CheckResponse) => void): (req: CheckRequest) => void {
  const checker = new TypeChecker();
  return (req) => {
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
    answer(res);
    if (req.items.length > 0) setImmediate(saveTypeScriptCache);
  };
}
