/**
 * Runs in a worker thread: the checker's side of the protocol (`checkHandler`), so the serving thread neither
 * pauses for a check nor carries TypeScript's heap through its garbage collections.
 */
import { parentPort } from 'node:worker_threads';
import { checkHandler } from './check-handler.js';

const port = parentPort;
if (port === null) throw new Error('typecheck-worker must run in a worker thread');
port.on(
  'message',
  checkHandler((res) => port.postMessage(res)),
);
