/**
 * Runs in a child process (`ProcessTypeChecker`): the checker's side of the protocol over the IPC channel. The
 * process ends with its parent: a closed channel means nobody is left to answer.
 */
import { checkHandler } from './check-handler.js';

const send = process.send?.bind(process);
if (send === undefined) throw new Error('typecheck-process must be started with an IPC channel');
process.on(
  'message',
  checkHandler((res) => send(res)),
);
process.on('disconnect', () => process.exit(0));
