/**
 * CPU time per request of the server process (every thread: process CPU ÷
 * requests), which holds within a few percent on a shared 2-core machine where
 * requests per second swing by ±20 %. `GET /hello` of powertable served by the
 * host, inline, in a worker and in a process of its own (the host's CPU and
 * the plugin process's summed), against a plain Fastify 5 app serving the same
 * plugin code: once with `logger: false`, once with pino at the host's level.
 * Rounds alternate the targets; each round sends the same number of requests
 * to each; ratios are taken per round, then the median.
 *
 * `BENCH_COMPARE_CMD="node /path/to/other/checkout/bin/plugin-host.mjs"` adds
 * that host (inline) as one more target, for a before/after in the same run;
 * `BENCH_WORKER=0` leaves the worker-isolated host out, `BENCH_PROCESS=0` the
 * process-isolated one. `BENCH_PAIRED=1`
 * loads all targets at the same time in each round rather than one after
 * another: on a machine whose other load changes from second to second, every
 * target of a round then shares the same conditions (absolute figures are
 * higher, as the targets compete with each other; ratios are steadier).
 */
import path from 'node:path';
import { cpuBetweenNs, treeCpuNs } from './lib/cpu.js';
import { type LoadResult, load } from './lib/load.js';
import { createDatabase } from './lib/pg.js';
import { copyPowertable, tempDir } from './lib/plugins.js';
import { type ServerProcess, startHost, startPlain, stopAll } from './lib/server.js';
import { fmt, isMain, log, median, QUICK, type Row, ratio, report, verdict } from './lib/util.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 5));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? (QUICK ? 4000 : 12_000));
const CONNECTIONS = 10;
/** Load every target at the same time in each round (same contention for all), instead of one after another. */
const PAIRED = process.env.BENCH_PAIRED === '1';

interface Sample {
  cpuUs: number;
  p99: number;
  rps: number;
}

async function measure(s: ServerProcess, url: string): Promise<Sample> {
  const pid = s.proc.pid as number;
  // the server's threads and its child processes' (a process plugin serves part of every request there)
  const before = treeCpuNs(pid);
  const r: LoadResult = await load(url, CONNECTIONS, 0, REQUESTS);
  const after = treeCpuNs(pid);
  if (r.errors + r.timeouts + r.non2xx > 0) throw new Error(`${s.name}: errors during load`);
  return { cpuUs: cpuBetweenNs(before, after) / 1000 / r.total, p99: r.p99, rps: r.rps };
}

export async function main(): Promise<Row[]> {
  const dir = tempDir('cpu');
  const db = await createDatabase('cpu');
  const dbw = await createDatabase('cpuw');
  const dbc = await createDatabase('cpuc');
  const dbp = await createDatabase('cpup');
  const servers: ServerProcess[] = [];
  try {
    const pt = copyPowertable(dir.dir);
    log('starting plain Fastify (logger off, pino) and the host (inline, worker, process)');
    const plainOff = await startPlain('plain-nolog', [pt], 60_000, { PLAIN_LOGGER: 'off' });
    const plainPino = await startPlain('plain-pino', [pt]);
    const inline = await startHost('host-inline', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: dir.dir,
      ARTIFACTS_DIR: path.join(dir.dir, '.artifacts'),
    });
    const withWorker = process.env.BENCH_WORKER !== '0';
    const worker = withWorker
      ? await startHost('host-worker', {
          DATABASE_URL: dbw.url,
          PLUGINS_DIR: dir.dir,
          ARTIFACTS_DIR: path.join(dir.dir, '.artifacts-w'),
          PLUGIN_ISOLATION: 'worker',
        })
      : undefined;
    const process_ =
      process.env.BENCH_PROCESS !== '0'
        ? await startHost('host-process', {
            DATABASE_URL: dbp.url,
            PLUGINS_DIR: dir.dir,
            ARTIFACTS_DIR: path.join(dir.dir, '.artifacts-p'),
            PLUGIN_ISOLATION: 'process',
          })
        : undefined;
    const compareCmd = (process.env.BENCH_COMPARE_CMD ?? '').split(' ').filter((x) => x !== '');
    const compare =
      compareCmd.length > 0
        ? await startHost(
            'host-compare',
            { DATABASE_URL: dbc.url, PLUGINS_DIR: dir.dir, ARTIFACTS_DIR: path.join(dir.dir, '.artifacts-c') },
            120_000,
            compareCmd,
          )
        : undefined;
    const targets = [plainOff, plainPino, inline, worker, process_, compare].filter((t) => t !== undefined);
    servers.push(...targets);
    for (const t of targets) await load(`${t.url}/hello`, CONNECTIONS, 0, 2000); // warm up
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length] as ServerProcess);
      if (PAIRED) {
        const r = await Promise.all(order.map((t) => measure(t, `${t.url}/hello`)));
        for (const [i, t] of order.entries()) (samples.get(t.name) as Sample[]).push(r[i] as Sample);
      } else {
        for (const t of order) (samples.get(t.name) as Sample[]).push(await measure(t, `${t.url}/hello`));
      }
      log(
        `round ${round + 1}/${ROUNDS}: ${targets.map((t) => `${t.name} ${fmt((samples.get(t.name) as Sample[])[round]?.cpuUs ?? 0, 1)} µs`).join(', ')}`,
      );
    }
    const of = (t: ServerProcess) => samples.get(t.name) as Sample[];
    const perRound = (t: ServerProcess, base: ServerProcess) => of(t).map((x, i) => x.cpuUs / ((of(base)[i] as Sample).cpuUs as number));
    const spread = (v: number[]) => `${fmt(Math.min(...v), 2)}–${fmt(Math.max(...v), 2)}`;
    const cpu = (t: ServerProcess) =>
      `${fmt(median(of(t).map((x) => x.cpuUs)), 1)} µs/request, ${fmt(median(of(t).map((x) => x.rps)), 0)} req/s, p99 ${fmt(median(of(t).map((x) => x.p99)), 0)} ms`;
    const rows: Row[] = [];
    for (const [t, label, target] of [
      [inline, 'inline', 1.03],
      [worker, 'worker', 2.0],
      [process_, 'process (host + plugin process)', 2.5],
    ] as const) {
      if (t === undefined) continue;
      const vsOff = perRound(t, plainOff);
      const vsPino = perRound(t, plainPino);
      rows.push({
        benchmark: 'CPU per request',
        measure: `GET /hello, ${label}, vs plain Fastify (logger off)`,
        result: cpu(t),
        baseline: cpu(plainOff),
        verdict: verdict(median(vsOff) <= target, `${ratio(median(vsOff))} (rounds ${spread(vsOff)}; target ≤ ${target}×)`),
      });
      rows.push({
        benchmark: 'CPU per request',
        measure: `GET /hello, ${label}, vs plain Fastify (pino at the host's level)`,
        result: cpu(t),
        baseline: cpu(plainPino),
        verdict: `${ratio(median(vsPino))} (rounds ${spread(vsPino)})`,
      });
    }
    if (compare !== undefined) {
      const vsOff = perRound(compare, plainOff);
      const vsCompare = perRound(inline, compare);
      rows.push({
        benchmark: 'CPU per request',
        measure: `GET /hello, inline, this tree vs ${compareCmd.join(' ')}`,
        result: cpu(inline),
        baseline: `${cpu(compare)} (${ratio(median(vsOff))} plain)`,
        verdict: `${ratio(median(vsCompare))} (rounds ${spread(vsCompare)})`,
      });
    }
    if (worker !== undefined) {
      const p99gap = median(of(worker).map((x, i) => x.p99 - ((of(inline)[i] as Sample).p99 as number)));
      rows.push({
        benchmark: 'CPU per request',
        measure: 'p99 latency at 10 connections, worker − inline',
        result: `${fmt(p99gap, 1)} ms`,
        baseline: `inline p99 ${fmt(median(of(inline).map((x) => x.p99)), 0)} ms`,
        verdict: verdict(p99gap <= 2, 'target ≤ 2 ms'),
      });
    }
    report('CPU per request', rows, [
      `${ROUNDS} ${PAIRED ? 'rounds loading every target at once' : 'alternated rounds'} of ${REQUESTS} requests at ${CONNECTIONS} connections per target; CPU = all threads of the server process and of its child processes, the plugin process included (/proc/<pid>/task/*/schedstat); ratios per round, median shown.`,
    ]);
    return rows;
  } finally {
    await stopAll(servers);
    await db.drop().catch(() => {});
    await dbw.drop().catch(() => {});
    await dbc.drop().catch(() => {});
    await dbp.drop().catch(() => {});
    dir.cleanup();
  }
}

if (isMain(import.meta.url)) await main();
