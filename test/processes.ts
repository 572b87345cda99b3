/**
 * Real server processes and a private PostgreSQL cluster for the multi-node,
 * fault and shutdown tests. Every child started here is tracked and killed by
 * `killAllServers()` (call it from `after` hooks) and, as a last resort, when
 * the test process exits.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { ROOT, waitFor } from './helpers.js';

const run = promisify(execFile);

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
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** One `plugin-host serve` process. */
export class ServerProcess {
  readonly logs: LogLine[] = [];
  /** Every line the process wrote, stdout and stderr. */
  readonly output: string[] = [];
  readonly exited: Promise<ServerExit>;
  exit: ServerExit | undefined;
  url = '';

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
      if (this.url === '' && typeof l.url === 'string' && String(l.msg).startsWith('plugin-host listening')) this.url = l.url;
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

/** Starts `node bin/plugin-host.mjs serve` with PORT=0 (the URL is read from its log) unless `env.PORT` is set. */
export async function startServer(o: ServerOptions): Promise<ServerProcess> {
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
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'plugin-host.mjs'), 'serve'], {
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

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const PG_BIN = process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A throw-away PostgreSQL 15 cluster owned by the `postgres` user, on its own
 * port with trust authentication, for tests that stop and restart the server
 * (the shared server on 5432 is used by other test files at the same time).
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ph-pg-'));
    chownSync(dir, uid('postgres'), gid('postgres'));
    const port = await freePort();
    const pg = new PrivatePostgres(dir, port);
    await pg.asPostgres(`${PG_BIN}/initdb`, ['-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    return pg;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private async asPostgres(cmd: string, args: string[]): Promise<string> {
    const { stdout } = await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: this.dir, timeout: 60_000 });
    return stdout;
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await this.asPostgres(`${PG_BIN}/pg_ctl`, [
      '-D',
      this.dataDir,
      '-l',
      path.join(this.dir, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      opts,
      'start',
    ]);
  }

  /** `fast` disconnects every client (they see admin_shutdown); `immediate` is a crash. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.asPostgres(`${PG_BIN}/pg_ctl`, ['-D', this.dataDir, '-w', '-t', '30', '-m', mode, 'stop']);
  }

  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  /** Runs one statement on a fresh connection (as psql would). */
  async sql<T = Record<string, unknown>>(text: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const sql = postgres(this.url(database), { max: 1, onnotice: () => {}, connect_timeout: 5 });
    try {
      return (await sql.unsafe(text, params as never[])) as unknown as T[];
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  /** Stops the server (if running) and removes its files. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uid(user: string): number {
  return Number(idOf(user, '-u'));
}
function gid(user: string): number {
  return Number(idOf(user, '-g'));
}
function idOf(user: string, flag: string): string {
  return execFileSync('id', [flag, user], { encoding: 'utf8' }).trim();
}

/** Result of a load run: every request answered, counted by status, plus bodies seen. */
export interface LoadStats {
  requests: number;
  byStatus: Record<number, number>;
  errors: string[];
  /** Values of `field` in JSON bodies, counted. */
  seen: Record<string, number>;
  non2xx: number;
}

/**
 * Continuous load with Node's fetch (undici) from `concurrency` workers against
 * one URL, until `stop()` or `maxMs`. Only 127.0.0.1 targets; bounded.
 */
export function startLoad(url: string, opts: { concurrency?: number; maxMs?: number; field?: string } = {}) {
  if (!url.startsWith('http://127.0.0.1:')) throw new Error(`load only against 127.0.0.1, not ${url}`);
  const stats: LoadStats = { requests: 0, byStatus: {}, errors: [], seen: {}, non2xx: 0 };
  const deadline = Date.now() + (opts.maxMs ?? 60_000);
  let stopped = false;
  const worker = async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        stats.requests++;
        stats.byStatus[res.status] = (stats.byStatus[res.status] ?? 0) + 1;
        if (res.status < 200 || res.status > 299) {
          stats.non2xx++;
          if (stats.errors.length < 20) stats.errors.push(`${res.status}: ${text.slice(0, 200)}`);
        } else if (opts.field !== undefined) {
          const v = String((JSON.parse(text) as Record<string, unknown>)[opts.field]);
          stats.seen[v] = (stats.seen[v] ?? 0) + 1;
        }
      } catch (err) {
        stats.requests++;
        if (stats.errors.length < 20) stats.errors.push(String((err as Error).cause ?? err));
        stats.byStatus[0] = (stats.byStatus[0] ?? 0) + 1;
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 8 }, worker);
  const done = Promise.all(workers).then(() => stats);
  return {
    stats,
    /** Requests so far (to wait until the load has really started). */
    get count() {
      return stats.requests;
    },
    async stop(): Promise<LoadStats> {
      stopped = true;
      return done;
    },
  };
}

/**
 * Source of a plugin serving `GET <route>` with `{ plugin, version, instance }`, where `instance` is new for
 * every loaded instance: a reload of the same version is visible from outside. `initialize` may wait `initMs`.
 */
export function markedPlugin(
  name: string,
  version: string,
  route = `/${name}`,
  opts: { initMs?: number; initThrows?: string; slowMs?: number } = {},
): string {
  const init = [
    opts.initMs ? `await new Promise((r) => setTimeout(r, ${opts.initMs}));` : '',
    opts.initThrows ? `throw new Error(${JSON.stringify(opts.initThrows)});` : '',
  ].join('\n    ');
  return `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => {
  const instance = Math.random().toString(36).slice(2);
  return {
    getMetadata: () => ({ name: ${JSON.stringify(name)}, version: ${JSON.stringify(version)}, description: 'marked test plugin', author: 'tests', endpoints: [{ method: 'GET', path: ${JSON.stringify(route)} }] }),
    async initialize(ctx) {
    ctx.log.info('initializing ${name} ${version}');
    ${init}
    },
    registerRoutes(server) {
      server.get(${JSON.stringify(route)}, async () => ({ plugin: ${JSON.stringify(name)}, version: ${JSON.stringify(version)}, instance }));${
        opts.slowMs
          ? `
      server.get(${JSON.stringify(`${route}/slow`)}, async () => {
        server.log.info({ instance }, 'slow request started');
        await new Promise((r) => setTimeout(r, ${opts.slowMs}));
        return { plugin: ${JSON.stringify(name)}, version: ${JSON.stringify(version)}, instance };
      });`
          : ''
      }
    },
    cleanup(ctx) {
      ctx.log.info({ instance }, 'cleaned up ${name} ${version}');
    },
  };
});
`;
}

/** `p`-quantile of `xs` (nearest rank). */
export function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? Number.NaN;
}
