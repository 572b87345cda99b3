import { Worker } from 'node:worker_threads';
import { workerModule } from '../worker-module.js';
import { type CheckerEndpoint, type EndpointEvents, QueuedChecker, type QueuedCheckerOptions } from './queued-checker.js';
import type { CheckResponse } from './worker-protocol.js';

export { DEFAULT_CHECK_MEMORY_MB, DEFAULT_CHECK_TIMEOUT_MS, START_BATCH_IDLE_MS } from './queued-checker.js';

const ENTRY = workerModule(import.meta.url, 'typecheck-worker');

export interface WorkerTypeCheckerOptions extends QueuedCheckerOptions {
  /** The worker's module (tests give one of their own). */
  entry?: URL | undefined;
}

/** A worker thread running the checker, its heap capped by `resourceLimits`. */
function startWorker(entry: URL, events: EndpointEvents, memoryMb: number): CheckerEndpoint {
  const w = new Worker(entry, { execArgv: [], stdout: false, stderr: false, resourceLimits: { maxOldGenerationSizeMb: memoryMb } });
  w.on('message', (res: CheckResponse) => events.message(res));
  w.on('error', (err) => {
    if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') events.exhausted();
    else events.lost(err);
  });
  w.on('exit', (code) => events.lost(new Error(`type-check worker exited with code ${code}`)));
  return {
    post: (req) => w.postMessage(req),
    ref: () => w.ref(),
    unref: () => w.unref(),
    async end() {
      w.removeAllListeners('exit');
      w.removeAllListeners('error');
      await w.terminate();
    },
  };
}

/**
 * Type checks in a worker thread (see `QueuedChecker` for the queue, the limits and the recycling): the
 * server's checker. The serving thread never loads TypeScript; the worker shares the process's cores and
 * priority.
 */
export class WorkerTypeChecker extends QueuedChecker {
  constructor(o: WorkerTypeCheckerOptions = {}) {
    const entry = o.entry ?? ENTRY;
    super((events, memoryMb) => startWorker(entry, events, memoryMb), o);
  }
}
