/**
 * Real `plugin-host serve` processes for the multi-node, fault and shutdown tests. Every child started here is
 * tracked and killed by `killAllServers()` (call it from `after` hooks) and, as a last resort, when the test
 * process exits or is terminated (the runner's time limit ends a file with SIGTERM).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { requireFreshDist } from './dist.js';
import { ROOT, waitFor } from './util.js';

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerOptions {
  /** Label used in failure messages. */
  name: string;
  env: Record<string, string>;
  /** Wait for the "listening" line (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
  /** Working directory of the process (default: the project root). */
  cwd?: string;
  /** The `node` to run the server on (default: this test's). */
  execPath?: string;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  });
}

/** One `plugin-host serve` process. */
export class ServerProcess {
  readonly logs: LogLine[] = [];
  /** Every line the process wrote, stdout and stderr. */
  readonly output: string[] = [];
  readonly exited: Promise<ServerExit>;
  exit: ServerExit | undefined;
  /** The data plane's URL (plugin routes, the public reads). */
  url = '';
  /** The control plane's URL (admin writes, console, feed, metrics). */
  adminUrl = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    children.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        children.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    const collect = (stream: NodeJS.ReadableStream | null) => {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) this.line(line);
      });
      stream?.on('end', () => {
        if (rest !== '') this.line(rest);
      });
    };
    collect(child.stdout);
    collect(child.stderr);
  }

  private line(line: string): void {
    if (line.trim() === '') return;
    this.output.push(line);
    try {
      const l = JSON.parse(line) as LogLine;
      this.logs.push(l);
      if (this.url === '' && typeof l.url === 'string' && String(l.msg).startsWith('plugin-host listening')) {
        this.url = l.url;
        this.adminUrl = typeof l.adminUrl === 'string' ? l.adminUrl : '';
      }
    } catch {
      /* not JSON: kept in output */
    }
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  findLog(pred: (l: LogLine) => boolean): LogLine | undefined {
    return this.logs.find(pred);
  }

  /** Waits (bounded) for a log line; fails early if the process exits. */
  waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> {
    return waitFor(
      () => {
        const hit = this.findLog(pred);
        if (hit !== undefined) return hit;
        if (this.exit !== undefined) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}): ${this.tail()}`);
        return undefined;
      },
      `${this.name}: ${what}`,
      timeoutMs,
    );
  }

  async waitReady(timeoutMs = 45_000): Promise<this> {
    await this.waitForLog((l) => String(l.msg).startsWith('plugin-host listening'), 'listening', timeoutMs);
    return this;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Sends `sig` and waits for the exit; SIGKILL if it has not exited within `timeoutMs`. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<ServerExit> {
    if (!this.running) return this.exit as ServerExit;
    this.child.kill(sig);
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }

  /** The last lines of output, for failure messages. */
  tail(n = 15): string {
    return this.output.slice(-n).join('\n');
  }
}

/** Starts `node bin/plugin-host.mjs serve` (the compiled host in dist/) with PORT=0 (the URL is read from its log) unless `env.PORT` is set. */
export async function startServer(o: ServerOptions): Promise<ServerProcess> {
  requireFreshDist();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    HOOK_TIMEOUT_MS: '3000',
    DRAIN_TIMEOUT_MS: '3000',
    NODE_ENV: 'test',
    ...o.env,
  };
  const child = spawn(o.execPath ?? process.execPath, [path.join(ROOT, 'bin', 'plugin-host.mjs'), 'serve'], {
    cwd: o.cwd ?? ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new ServerProcess(o.name, child);
  if (o.waitReady ?? true) await p.waitReady(o.readyTimeoutMs);
  return p;
}

/** Kills every server process still running (SIGKILL) and waits for them to exit. */
export async function killAllServers(): Promise<void> {
  const all = [...children];
  for (const c of all) c.kill('SIGKILL');
  await Promise.all(all.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
}
