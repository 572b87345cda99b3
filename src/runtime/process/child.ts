/**
 * Runs inside a plugin's own process: waits for its boot message (the bundle
 * comes over the IPC channel, so the process needs no read of the artifacts),
 * then is the plugin side of the supervised runtime over that channel. Started
 * under Node's permission model, with an empty environment, as another user
 * when the host is root. A hang, an exit, an uncaught exception or memory past
 * the cap ends this process only.
 */
import type { MemoryNow } from '../confine/memory-guard.js';
import type { FromWorker, ToWorker } from '../supervised/protocol.js';
import { runPlugin } from '../supervised/serve.js';
import { Batcher, unbatch } from './batch.js';

/** Exit code of an uncaught exception (the host reports it as one). */
const EXIT_EXCEPTION = 70;
/** Exit code after going past the memory cap. */
const EXIT_MEMORY = 137;

const outbox = new Batcher<FromWorker>((batch) => {
  if (process.connected) process.send?.(batch);
});
const send = (m: FromWorker) => outbox.push(m);

process.on('uncaughtException', (err) => {
  process.stderr.write(`uncaught ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
  process.exit(EXIT_EXCEPTION);
});
// the host is gone (or ended the channel): nothing is left to serve
process.on('disconnect', () => process.exit(0));

process.once('message', (first: ToWorker) => {
  if (first.t !== 'boot') process.exit(2);
  const listeners: Array<(m: ToWorker) => void> = [];
  process.on('message', (batch: ToWorker | ToWorker[]) => {
    for (const m of unbatch(batch)) for (const l of listeners) l(m);
  });
  void runPlugin(
    first.boot,
    {
      post: send,
      onMessage: (fn) => listeners.push(fn),
      // the host ends this process once it has the answer; everything queued leaves now
      close: () => outbox.flush(),
      beat(now: MemoryNow, lagMs: number) {
        send({ t: 'beat', heapKb: now.heapKb, externalKb: now.externalKb, lagMs });
      },
      overMemory(now: MemoryNow): never {
        send({ t: 'memory', heapKb: now.heapKb, externalKb: now.externalKb });
        outbox.flush();
        // the exit code says it too, should the message not leave before the process ends
        process.exit(EXIT_MEMORY);
      },
    },
    'process',
  );
});
