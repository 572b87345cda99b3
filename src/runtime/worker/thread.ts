/**
 * Runs inside a plugin's worker thread: the plugin side of the supervised
 * runtime over this thread's port, its counters in shared memory. A hang,
 * `process.exit()`, an uncaught exception or memory past the cap here ends
 * this thread only.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MemoryNow } from '../confine/memory-guard.js';
import {
  type FromWorker,
  STAT_BEAT,
  STAT_EXTERNAL_KB,
  STAT_HEAP_KB,
  STAT_LAG_MS,
  STAT_OVER_MEMORY,
  type ToWorker,
  type WorkerBoot,
} from '../supervised/protocol.js';
import { runPlugin } from '../supervised/serve.js';

if (parentPort === null) throw new Error('the plugin worker must run in a worker thread');
const port = parentPort;
const boot = workerData as WorkerBoot;
const stats = new Int32Array(boot.stats as SharedArrayBuffer);

const store = (now: MemoryNow) => {
  Atomics.store(stats, STAT_HEAP_KB, now.heapKb);
  Atomics.store(stats, STAT_EXTERNAL_KB, now.externalKb);
};

void runPlugin(
  boot,
  {
    post: (m: FromWorker) => port.postMessage(m),
    onMessage: (fn: (m: ToWorker) => void) => port.on('message', fn),
    close: () => port.close(),
    beat(now, lagMs) {
      Atomics.add(stats, STAT_BEAT, 1);
      store(now);
      Atomics.store(stats, STAT_LAG_MS, lagMs);
    },
    overMemory(now): never {
      // the flag is read by the serving thread when this thread's exit is reported: the death's reason is memory
      store(now);
      Atomics.store(stats, STAT_OVER_MEMORY, 1);
      process.exit(137);
    },
  },
  'worker',
);
