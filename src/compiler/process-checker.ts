import { fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type CheckerEndpoint, type EndpointEvents, QueuedChecker, type QueuedCheckerOptions } from './queued-checker.js';
import type { CheckResponse } from './worker-protocol.js';

/** The niceness of a checker process unless told otherwise: the lowest priority, so serving always goes first. */
export const DEFAULT_CHECK_NICE = 19;

/** Its module: compiled, the `.js` beside this one; from the sources, the `.ts` through tsx (a process starts bare). */
const ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './typecheck-process.ts' : './typecheck-process.js', import.meta.url),
);

export interface ProcessTypeCheckerOptions extends QueuedCheckerOptions {
  /**
   * Niceness of the checker process (0 to 19; default 19). A check is CPU-bound for a second or more; at the
   * lowest priority it takes only the CPU that serving leaves, on a node whose cores are all busy.
   */
  nice?: number | undefined;
  /** The process's module, a file path (tests give one of their own). */
  entry?: string | undefined;
}

/** What V8 prints as it aborts a process that ran out of its heap cap. */
const OUT_OF_MEMORY = /JavaScript heap out of memory|Reached heap limit/;

/** A child process running the checker, its heap capped by `--max-old-space-size`, at priority `nice`. */
function startProcess(entry: string, events: EndpointEvents, memoryMb: number, nice: number): CheckerEndpoint {
  const child = fork(entry, [], {
    execArgv: [...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []), `--max-old-space-size=${memoryMb}`],
    // nothing of the host's environment (DATABASE_URL, ADMIN_TOKEN): a check reads plugin sources, never secrets
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let ended = false;
  try {
    if (child.pid !== undefined) setPriority(child.pid, nice);
  } catch {
    // not permitted here: the check still runs, at the host's priority
  }
  // the last lines it wrote, to tell a heap exhaustion from another death
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    tail = (tail + s).slice(-4096);
  });
  child.on('message', (res: CheckResponse) => {
    if (!ended) events.message(res);
  });
  child.on('error', (err) => {
    if (!ended) events.lost(err);
  });
  // 'close': its stderr is read to the end, so a heap exhaustion is told apart
  child.on('close', (code, signal) => {
    if (ended) return;
    ended = true;
    if (OUT_OF_MEMORY.test(tail)) events.exhausted();
    else events.lost(new Error(`type-check process exited with ${signal ?? `code ${code}`}`));
  });
  // a piped stderr is a socket: it, the IPC channel and the child each keep this process alive while ref'd
  const stderr = child.stderr as Socket | null;
  return {
    post: (req) => child.send(req),
    ref: () => {
      child.ref();
      child.channel?.ref();
      stderr?.ref();
    },
    unref: () => {
      child.unref();
      child.channel?.unref();
      stderr?.unref();
    },
    async end() {
      ended = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.ref(); // an idle checker is unref'd: without this, nothing would keep the loop waiting for its exit
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Type checks in a child process (see `QueuedChecker` for the queue, the limits and the recycling) at the lowest
 * CPU priority: compiling never competes with serving for a core, and the checker's heap is not the server's
 * at all. Costs a process start (about 50 ms before TypeScript loads) on each cold start of the checker.
 */
export class ProcessTypeChecker extends QueuedChecker {
  constructor(o: ProcessTypeCheckerOptions = {}) {
    const nice = o.nice ?? DEFAULT_CHECK_NICE;
    const entry = o.entry ?? ENTRY;
    super((events, memoryMb) => startProcess(entry, events, memoryMb, nice), o);
  }
}
