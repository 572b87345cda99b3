import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { findEntry } from '../../src/discovery/index.js';
import { freePort, log, now, ROOT, sleep } from './util.js';

export interface ServerProcess {
  name: string;
  /** The data plane (plugin routes). */
  url: string;
  /** The control plane of a host (admin API, metrics); the same as `url` for a plain server. */
  adminUrl: string;
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

/**
 * `BENCH_CPU_PROF=<dir>`: every server runs with `--cpu-prof`, its profile
 * written to `<dir>/<name>/` when it exits (open it in Chrome's DevTools or
 * summarise it with `node --import tsx bench/lib/profile-summary.ts <file>`).
 */
function profileArgs(name: string): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, name)}`];
}

/**
 * The command that starts a host, `serve` appended: `BENCH_HOST_CMD` when set
 * (split on spaces, e.g. `node dist/bin/plugin-host.mjs` for a compiled build,
 * or `node /other/checkout/bin/plugin-host.mjs` to compare two trees), else
 * this checkout's `bin/plugin-host.mjs` under the running node.
 */
export function hostCommand(): string[] {
  const cmd = (process.env.BENCH_HOST_CMD ?? '').split(' ').filter((x) => x !== '');
  return cmd.length > 0 ? cmd : [process.execPath, path.join(ROOT, 'bin', 'plugin-host.mjs')];
}

function spawnServer(
  name: string,
  command: string[],
  env: Record<string, string | undefined>,
  port: number,
  adminPort?: number,
): ServerProcess {
  const [exe = process.execPath, ...args] = command;
  const isNode = exe === process.execPath || path.basename(exe) === 'node';
  const proc = spawn(exe, [...(isNode ? profileArgs(name) : []), ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ...(adminPort === undefined ? {} : { ADMIN_PORT: String(adminPort) }),
      NODE_ENV: 'production',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: ServerProcess = {
    name,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort ?? port}`,
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

/**
 * Starts a host (`hostCommand()`, or `command`, followed by `serve`) and waits
 * for `GET /readyz` to answer 200.
 */
export async function startHost(name: string, env: HostEnv, timeoutMs = 120_000, command = hostCommand()): Promise<ServerProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const t0 = now();
  const s = spawnServer(name, [...command, 'serve'], { LOG_LEVEL: 'warn', ...env }, port, adminPort);
  try {
    s.readyMs = await waitFor200(`${s.url}/readyz`, t0, timeoutMs, s.proc);
  } catch (err) {
    await s.stop();
    log(`${name} did not become ready; its last lines:\n${s.lines.slice(-30).join('\n')}`);
    throw err;
  }
  return s;
}

/**
 * The plain app and the plugins it serves, compiled to JavaScript under `.tmp/bench-plain/` (inside the
 * package, so `fastify` and `plugin-host/sdk` resolve as they would in an app): the baseline runs on plain
 * `node`, without a TypeScript loader in its process, as the host runs its own compiled code.
 */
async function compilePlain(pluginDirs: string[]): Promise<{ server: string; modules: string[] }> {
  const { build } = await import('esbuild');
  const out = path.join(ROOT, '.tmp', 'bench-plain');
  const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' } as const;
  const server = path.join(out, 'plain-server.mjs');
  await build({ ...common, entryPoints: [path.join(ROOT, 'bench', 'plain-server.ts')], outfile: server });
  const modules: string[] = [];
  for (const [i, dir] of pluginDirs.entries()) {
    const entry = await findEntry(dir);
    if (entry === undefined) throw new Error(`${dir}: no entry file`);
    const file = path.join(out, `plugin-${i}-${path.basename(dir)}.mjs`);
    await build({ ...common, entryPoints: [entry], outfile: file });
    modules.push(file);
  }
  return { server, modules };
}

/** Starts the plain Fastify app serving the same handlers (bench/plain-server.ts, compiled). */
export async function startPlain(
  name: string,
  pluginDirs: string[],
  timeoutMs = 60_000,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const compiled = await compilePlain(pluginDirs);
  const t0 = now();
  const s = spawnServer(
    name,
    [process.execPath, compiled.server],
    {
      PLAIN_PLUGINS: pluginDirs.join(path.delimiter),
      PLAIN_MODULES: compiled.modules.join(path.delimiter),
      LOG_LEVEL: 'warn',
      ...env,
    },
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
