import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, log, now, ROOT, sleep } from './util.js';

export interface ServerProcess {
  name: string;
  url: string;
  port: number;
  proc: ChildProcess;
  /** Milliseconds from spawn to the first 200 of the ready check. */
  readyMs: number;
  /** The last lines the process printed (stdout and stderr). */
  lines: string[];
  /** Called with every line the process prints. */
  onLine: ((line: string) => void) | undefined;
  stop(): Promise<void>;
}

export interface HostEnv {
  DATABASE_URL: string;
  PLUGINS_DIR: string;
  ARTIFACTS_DIR: string;
  DATA_DIR?: string;
  LOG_LEVEL?: string;
  TYPECHECK?: string;
  NODE_ID?: string;
  DISCOVER?: string;
  [k: string]: string | undefined;
}

const KEEP_LINES = 200;

function spawnServer(name: string, args: string[], env: Record<string, string | undefined>, port: number): ServerProcess {
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: ServerProcess = {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    proc,
    readyMs: Number.NaN,
    lines: [],
    onLine: undefined,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
  for (const stream of [proc.stdout, proc.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => {
      s.lines.push(line);
      if (s.lines.length > KEEP_LINES) s.lines.shift();
      s.onLine?.(line);
    });
  }
  return s;
}

/** Polls `url` until it answers 200; returns the elapsed milliseconds since `since`. */
export async function waitFor200(url: string, since: number, timeoutMs: number, proc?: ChildProcess): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (proc !== undefined && proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}) before ${url} answered`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return now() - since;
    } catch {
      // not listening yet
    }
    if (now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** Starts `node bin/plugin-host.mjs serve` and waits for `GET /readyz` to answer 200. */
export async function startHost(name: string, env: HostEnv, timeoutMs = 120_000): Promise<ServerProcess> {
  const port = await freePort();
  const t0 = now();
  const s = spawnServer(name, [path.join(ROOT, 'bin', 'plugin-host.mjs'), 'serve'], { LOG_LEVEL: 'warn', ...env }, port);
  try {
    s.readyMs = await waitFor200(`${s.url}/readyz`, t0, timeoutMs, s.proc);
  } catch (err) {
    await s.stop();
    log(`${name} did not become ready; its last lines:\n${s.lines.slice(-30).join('\n')}`);
    throw err;
  }
  return s;
}

/** Starts the plain Fastify app serving the same handlers (bench/plain-server.ts). */
export async function startPlain(
  name: string,
  pluginDirs: string[],
  timeoutMs = 60_000,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const t0 = now();
  const s = spawnServer(
    name,
    ['--import', 'tsx', path.join(ROOT, 'bench', 'plain-server.ts')],
    { PLAIN_PLUGINS: pluginDirs.join(path.delimiter), LOG_LEVEL: 'warn', ...env },
    port,
  );
  try {
    s.readyMs = await waitFor200(`${s.url}/__ready`, t0, timeoutMs, s.proc);
  } catch (err) {
    await s.stop();
    log(`${name} did not become ready; its last lines:\n${s.lines.slice(-30).join('\n')}`);
    throw err;
  }
  return s;
}

/** Stops every server, ignoring errors (used in `finally`). */
export async function stopAll(servers: readonly (ServerProcess | undefined)[]): Promise<void> {
  await Promise.all(servers.map((s) => s?.stop().catch(() => {})));
}
