/**
 * CPU time per request at the default log level (`LOG_LEVEL=info`), where
 * every plugin request writes two lines ("incoming request", "request
 * completed"): `GET /hello` of powertable served inline by the host against a
 * plain Fastify 5 app with `logger: true` serving the same plugin code, which
 * writes the same pair. CPU per request = process CPU (every thread) ÷
 * requests. Rounds alternate the targets; ratios are taken per round, then
 * the median, with the spread of the rounds. Both servers write their lines
 * to a pipe the benchmark reads, so both pay the same for the output.
 */
import path from 'node:path';
import { cpuBetweenNs, threadCpuNs } from './lib/cpu.js';
import { load } from './lib/load.js';
import { createDatabase } from './lib/pg.js';
import { copyPowertable, tempDir } from './lib/plugins.js';
import { type ServerProcess, startHost, startPlain, stopAll } from './lib/server.js';
import { fmt, isMain, log, median, QUICK, type Row, ratio, report, verdict } from './lib/util.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 5));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? (QUICK ? 3000 : 10_000));
const CONNECTIONS = 10;

async function cpuPerRequestUs(s: ServerProcess, url: string): Promise<number> {
  const pid = s.proc.pid as number;
  const before = threadCpuNs(pid);
  const r = await load(url, CONNECTIONS, 0, REQUESTS);
  const after = threadCpuNs(pid);
  if (r.errors + r.timeouts + r.non2xx > 0) throw new Error(`${s.name}: errors during load`);
  return cpuBetweenNs(before, after) / 1000 / r.total;
}

/** Bytes of the last line `s` printed whose message is `msg` (0 if none). */
function lineBytes(s: ServerProcess, msg: string): number {
  for (let i = s.lines.length - 1; i >= 0; i--) {
    const l = s.lines[i] as string;
    if (l.includes(`"msg":"${msg}"`)) return Buffer.byteLength(l);
  }
  return 0;
}

export async function main(): Promise<Row[]> {
  const dir = tempDir('reqlog');
  const db = await createDatabase('reqlog');
  const servers: ServerProcess[] = [];
  try {
    const pt = copyPowertable(dir.dir);
    log('starting plain Fastify (logger: true) and the host (inline, LOG_LEVEL=info)');
    const plain = await startPlain('plain-logger-true', [pt], 60_000, { PLAIN_LOGGER: 'fastify' });
    const host = await startHost('host-info', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: dir.dir,
      ARTIFACTS_DIR: path.join(dir.dir, '.artifacts'),
      LOG_LEVEL: 'info',
    });
    const targets = [plain, host];
    servers.push(...targets);
    for (const t of targets) await load(`${t.url}/hello`, CONNECTIONS, 0, 2000); // warm up
    const samples = new Map<string, number[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) (samples.get(t.name) as number[]).push(await cpuPerRequestUs(t, `${t.url}/hello`));
      log(
        `round ${round + 1}/${ROUNDS}: ${targets.map((t) => `${t.name} ${fmt((samples.get(t.name) as number[])[round] ?? 0, 1)} µs`).join(', ')}`,
      );
    }
    const of = (t: ServerProcess) => samples.get(t.name) as number[];
    const perRound = of(host).map((x, i) => x / (of(plain)[i] as number));
    const spread = `${fmt(Math.min(...perRound), 2)}–${fmt(Math.max(...perRound), 2)}`;
    const bytes = (t: ServerProcess) => `lines of ${lineBytes(t, 'incoming request')} + ${lineBytes(t, 'request completed')} bytes`;
    const rows: Row[] = [
      {
        benchmark: 'Request logging',
        measure: 'GET /hello at LOG_LEVEL=info, inline, vs plain Fastify (logger: true)',
        result: `${fmt(median(of(host)), 1)} µs/request (${bytes(host)})`,
        baseline: `${fmt(median(of(plain)), 1)} µs/request (${bytes(plain)})`,
        verdict: verdict(median(perRound) <= 1.1, `${ratio(median(perRound))} (rounds ${spread}; target ≤ 1.1×)`),
      },
    ];
    report('Request logging', rows, [
      `${ROUNDS} alternated rounds of ${REQUESTS} requests at ${CONNECTIONS} connections per target; CPU = all threads of the server process (/proc/<pid>/task/*/schedstat) ÷ requests; ratios per round, median shown with the spread of the rounds.`,
    ]);
    return rows;
  } finally {
    await stopAll(servers);
    await db.drop().catch(() => {});
    dir.cleanup();
  }
}

if (isMain(import.meta.url)) await main();
