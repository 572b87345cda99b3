import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { workerModule } from '../../worker-module.js';
import type { BootSpec, DeathReason, OnEnd, OnMessage, PluginHandle } from '../supervised/handle.js';
import type { FromWorker, ToWorker } from '../supervised/protocol.js';
import { Batcher, unbatch } from './batch.js';
import { execArgvFor, type ProcessIdentity } from './spawn-options.js';

const ENTRY = workerModule(import.meta.url, 'child');
const FROM_SOURCES = import.meta.url.endsWith('.ts');
/** Resident memory Node itself takes in a plugin process, allowed on top of `PLUGIN_MEMORY_MB`. */
export const PROCESS_BASE_MB = 64;
/** Bytes per page of /proc/<pid>/statm (Linux on x86-64 and arm64 alike). */
const PAGE = 4096;

export interface ProcessOptions {
  identity: ProcessIdentity | undefined;
}

/** Resident bytes of a process, from /proc; undefined where there is no /proc. */
function residentBytes(pid: number): number | undefined {
  try {
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8');
    return Number(statm.split(' ')[1]) * PAGE;
  } catch {
    return undefined;
  }
}

/**
 * One child process running one plugin version. Its heartbeat and counters
 * arrive as `beat` messages; its memory is measured from outside (the whole
 * resident set, Buffers and all, read from /proc by the supervisor's sweep),
 * so a plugin cannot under-report it.
 */
export class ProcessHandle implements PluginHandle {
  readonly child: ChildProcess;
  private lastBeatAt = Date.now();
  private lastCheckAt = Date.now();
  private heapKb = 0;
  private externalKb = 0;
  private lag = 0;
  private readonly capBytes: number;
  private endReason: DeathReason | 'stopped' | undefined;
  private stderrTail = '';
  private readonly outbox = new Batcher<ToWorker>((batch) => {
    if (this.child.connected) this.child.send(batch);
  });

  constructor(boot: BootSpec, o: ProcessOptions, onMessage: OnMessage, onEnd: OnEnd) {
    this.capBytes = (boot.memoryMb + PROCESS_BASE_MB) * 1024 * 1024;
    this.child = spawn(process.execPath, [...execArgvFor(ENTRY, boot.memoryMb, FROM_SOURCES), ENTRY.pathname], {
      // empty: Node needs nothing of it (from the sources, tsx is told not to write its cache, which it may not)
      env: FROM_SOURCES ? { TSX_DISABLE_CACHE: '1' } : {},
      cwd: '/',
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
      ...(o.identity === undefined ? {} : { uid: o.identity.uid, gid: o.identity.gid }),
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (s: string) => {
      this.stderrTail = (this.stderrTail + s).slice(-2048);
    });
    this.child.on('message', (batch: FromWorker | FromWorker[]) => {
      for (const m of unbatch(batch)) {
        if (m === null || typeof m !== 'object') continue;
        if (m.t === 'beat') {
          this.lastBeatAt = Date.now();
          this.heapKb = Number(m.heapKb) || 0;
          this.externalKb = Number(m.externalKb) || 0;
          this.lag = Number(m.lagMs) || 0;
        } else if (m.t === 'memory') this.endReason ??= 'memory';
        else onMessage(m);
      }
    });
    let ended = false;
    const end = (reason: DeathReason | 'stopped', detail: string) => {
      if (ended) return;
      ended = true;
      onEnd(reason, detail);
    };
    this.child.on('error', (err) => {
      this.stderrTail += `\n${err.message}`;
      // A spawn that fails (the plugin user may not execute this node: EACCES) emits 'error' and never 'exit':
      // it ends here, at once and saying why, instead of leaving the load to its time limit.
      if (this.child.pid === undefined) {
        end(
          'exit',
          `the plugin process could not start (${process.execPath} as uid ${o.identity?.uid ?? process.getuid?.()}): ${err.message}`,
        );
      }
    });
    this.child.once('exit', (code, signal) => {
      const { reason, detail } = this.classify(code, signal);
      end(reason, detail);
    });
    // a process that could not start reports it through 'error' and 'exit'; the boot message then goes nowhere
    if (this.child.connected)
      this.child.send({ t: 'boot', boot: { ...boot, stats: undefined } } satisfies ToWorker, (err) => err && this.child.kill('SIGKILL'));
  }

  private classify(code: number | null, signal: NodeJS.Signals | null): { reason: DeathReason | 'stopped'; detail: string } {
    if (this.endReason === 'stopped') return { reason: 'stopped', detail: 'stopped' };
    if (this.endReason === 'memory') return { reason: 'memory', detail: `memory cap reached (PLUGIN_MEMORY_MB)` };
    if (this.endReason !== undefined) return { reason: this.endReason, detail: this.endReason };
    const last = this.stderrTail.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
    // V8's heap limit (--max-old-space-size) aborts the process
    if (signal === 'SIGABRT' || /heap out of memory/i.test(this.stderrTail)) return { reason: 'memory', detail: 'heap limit reached' };
    if (code === 137) return { reason: 'memory', detail: 'memory cap reached (PLUGIN_MEMORY_MB)' };
    if (code === 70) return { reason: 'exception', detail: last || 'uncaught exception' };
    const why = signal !== null ? `ended by ${signal}` : `exited with code ${code}`;
    return { reason: 'exit', detail: last === '' ? why : `${why}: ${last.slice(0, 200)}` };
  }

  post(msg: ToWorker): void {
    this.outbox.push(msg);
  }

  end(reason: DeathReason | 'stopped'): void {
    this.endReason ??= reason;
    this.child.kill('SIGKILL');
  }

  stalled(stallMs: number, now: number): boolean {
    // The beats wait in the channel while the host's own event loop is held (the sweep's timer then runs before
    // they are read): a sweep that comes late cannot judge, and gives the process a fresh start instead.
    const late = now - this.lastCheckAt > stallMs / 2;
    this.lastCheckAt = now;
    if (late) {
      this.lastBeatAt = now;
      return false;
    }
    return now - this.lastBeatAt > stallMs;
  }

  overMemory(): boolean {
    const pid = this.child.pid;
    const rss = pid === undefined ? undefined : residentBytes(pid);
    return (rss ?? (this.heapKb + this.externalKb) * 1024) > this.capBytes;
  }

  get heapBytes(): number {
    return this.heapKb * 1024;
  }

  get externalBytes(): number {
    return this.externalKb * 1024;
  }

  get lagMs(): number {
    return this.lag;
  }
}
