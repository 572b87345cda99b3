/**
 * Reload under load: autocannon drives GET /hello at full rate while the
 * plugin is reloaded 30 times (new source, SQL UPDATE, wait until the new
 * version answers; type check included). Counts failed requests and non-2xx
 * answers, and compares the throughput (mean and worst second) and the
 * serving thread's event-loop delay (p99 and max, from the host's own
 * `/metrics`, whose histogram restarts at each scrape) with a run of the same
 * length without reloads on the same server, same run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { childrenCpuMs, mainAndOtherNs, threadCpuNs } from './lib/cpu.js';
import { load } from './lib/load.js';
import { createDatabase } from './lib/pg.js';
import { copyPowertable, powertableSource, tempDir } from './lib/plugins.js';
import { type ServerProcess, startHost, stopAll } from './lib/server.js';
import { fmt, isMain, log, ms, now, QUICK, type Row, ratio, report, sleep, verdict } from './lib/util.js';

const RELOADS = Number(process.env.BENCH_RELOADS ?? (QUICK ? 10 : 30));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
/** Reloads of the timed trial, without load (their CPU is the per-reload figure). */
const TRIAL_RELOADS = 10;
/** Reloads per second of the paced window: a busy fleet's rollout pace, far above an editor's. */
const PACED_PER_S = Number(process.env.BENCH_RELOADS_PER_S ?? 2);

export async function main(): Promise<Row[]> {
  const plugins = tempDir('rul');
  const db = await createDatabase('rul');
  let host: ServerProcess | undefined;
  try {
    const dir = copyPowertable(plugins.dir);
    const entry = path.join(dir, 'main.ts');
    const original = readFileSync(entry, 'utf8');
    host = await startHost('host', { DATABASE_URL: db.url, PLUGINS_DIR: plugins.dir, ARTIFACTS_DIR: path.join(plugins.dir, '.artifacts') });
    const url = `${host.url}/hello`;
    // warm the reload path (first compiles after start are slower), then the request path
    for (let i = 0; i < 3; i++) {
      const v = `0.9.${i}`;
      writeFileSync(entry, powertableSource(v, original));
      await db.sql`UPDATE plugins SET version = ${v} WHERE name = 'powertable'`;
      await servedVersion(url, v);
    }
    await load(url, CONNECTIONS, 2);

    // the duration is sized from a timed trial so that the reloads fill the loaded window; the trial also
    // measures the CPU one reload costs each part of the host (no load meanwhile)
    const pid = host.proc.pid as number;
    const cpu0 = threadCpuNs(pid);
    const child0 = childrenCpuMs(pid);
    const trial0 = now();
    for (let i = 0; i < TRIAL_RELOADS; i++) await reload(db.sql, entry, original, url, `0.8.${i}`);
    const perReload = (now() - trial0) / TRIAL_RELOADS;
    const split = mainAndOtherNs(pid, cpu0, threadCpuNs(pid));
    let childMs = 0;
    for (const [c, msNow] of childrenCpuMs(pid)) childMs += msNow - (child0.get(c) ?? 0);
    const perReloadCpu = {
      main: split.main / 1e6 / TRIAL_RELOADS,
      other: split.other / 1e6 / TRIAL_RELOADS,
      esbuild: childMs / TRIAL_RELOADS,
    };
    // Reloads run from the load's first second to its end, so that every second measured has them (a few
    // reloads in a longer window would dilute the figure with seconds that had none): once paced (PACED_PER_S,
    // RELOADS of them), once back to back (as fast as each is served, the stress case), then the same load
    // without reloads.
    const duration = Math.max(5, Math.ceil(RELOADS / PACED_PER_S) + 1);
    log(`reload under load: ${PACED_PER_S} reloads/s, then back to back, through ${duration} s loads; then ${duration} s without`);
    let minor = 0;
    const reloadingThrough = async (everyMs: number) => {
      let loading = true;
      const during = load(url, CONNECTIONS, duration).finally(() => {
        loading = false;
      });
      const t0 = now();
      let reloads = 0;
      while (loading) {
        const next = now() + everyMs;
        await reload(db.sql, entry, original, url, `1.${minor}.${reloads++}`);
        while (loading && now() < next) await sleep(Math.min(20, next - now()));
      }
      minor++;
      return { result: await during, reloads, window: (now() - t0) / 1000 };
    };
    await eventLoopDelay(host.adminUrl); // restarts the histogram
    const paced = await reloadingThrough(1000 / PACED_PER_S);
    const eldPaced = await eventLoopDelay(host.adminUrl);
    const stress = await reloadingThrough(0);
    const eldDuring = await eventLoopDelay(host.adminUrl);
    const withReloads = stress.result;
    const reloads = stress.reloads;
    const reloadWindow = stress.window;
    const baseline = await load(url, CONNECTIONS, duration);
    const eldBaseline = await eventLoopDelay(host.adminUrl);

    const failed = [withReloads, paced.result].reduce((n, r) => n + r.errors + r.timeouts + r.resets, 0);
    const non2xx = withReloads.non2xx + paced.result.non2xx;
    const pacedMin = Math.min(...paced.result.perSecond.slice(1, duration));
    const steady = (xs: number[]) => xs.slice(1, duration);
    const minDuring = Math.min(...steady(withReloads.perSecond));
    const rows: Row[] = [
      {
        benchmark: 'reload under load',
        measure: `GET /hello at full rate (${CONNECTIONS} connections) during ${paced.reloads + reloads} reloads`,
        result: `${fmt(withReloads.total + paced.result.total, 0)} requests: ${failed} failed, ${non2xx} non-2xx`,
        baseline: `${fmt(baseline.total, 0)} requests without reloads: ${baseline.errors + baseline.timeouts} failed, ${baseline.non2xx} non-2xx`,
        verdict: verdict(failed === 0 && non2xx === 0, 'target 0 failed, 0 non-2xx'),
      },
      {
        benchmark: 'reload under load',
        measure: `throughput, ${paced.reloads} reloads at ${PACED_PER_S}/s through ${fmt(paced.window, 1)} s (mean; worst second)`,
        result: `${fmt(paced.result.rps, 0)} req/s; worst second ${fmt(pacedMin, 0)}`,
        baseline: `${fmt(baseline.rps, 0)} req/s without reloads`,
        verdict: verdict(
          paced.result.rps / baseline.rps >= 0.9,
          `mean ${ratio(paced.result.rps / baseline.rps)} (target ≥ 0.90×), worst second ${ratio(pacedMin / baseline.rps)}`,
        ),
      },
      {
        benchmark: 'reload under load',
        measure: `throughput, ${reloads} back-to-back reloads through ${fmt(reloadWindow, 1)} s (stress; mean, worst second)`,
        result: `${fmt(withReloads.rps, 0)} req/s; worst second ${fmt(minDuring, 0)}`,
        baseline: `${fmt(baseline.rps, 0)} req/s without reloads`,
        verdict: `mean ${ratio(withReloads.rps / baseline.rps)}, worst second ${ratio(minDuring / baseline.rps)}: ${fmt(reloads / reloadWindow, 0)} reloads/s`,
      },
      {
        benchmark: 'reload under load',
        measure: `CPU one reload costs the host, without load (${TRIAL_RELOADS} reloads)`,
        result: `serving thread ${ms(perReloadCpu.main)}; other threads ${ms(perReloadCpu.other)}; esbuild ${ms(perReloadCpu.esbuild, 0)}`,
        baseline: `${ms(perReload)} per reload (wall)`,
        verdict: `the serving thread does ${fmt((100 * perReloadCpu.main) / (perReloadCpu.main + perReloadCpu.other + perReloadCpu.esbuild), 0)} % of it; the type check is most of the rest`,
      },
      {
        benchmark: 'reload under load',
        measure: 'event-loop delay of the serving thread during the reloads, paced / back to back (p99; max)',
        result: `${ms(eldPaced.p99)}; max ${ms(eldPaced.max)} / ${ms(eldDuring.p99)}; max ${ms(eldDuring.max)}`,
        baseline: `${ms(eldBaseline.p99)}; max ${ms(eldBaseline.max)} without reloads`,
        verdict: `p99 +${ms(eldDuring.p99 - eldBaseline.p99)}`,
      },
      {
        benchmark: 'reload under load',
        measure: 'p99 latency during the reloads, paced / back to back',
        result: `${fmt(paced.result.p99, 0)} ms (max ${fmt(paced.result.max, 0)} ms) / ${fmt(withReloads.p99, 0)} ms (max ${fmt(withReloads.max, 0)} ms)`,
        baseline: `${fmt(baseline.p99, 0)} ms (max ${fmt(baseline.max, 0)} ms)`,
        verdict: "type checks run in a worker thread, bundling in esbuild's process; loading and the swap on the serving thread",
      },
    ];
    report('Reload under load', rows, [
      'Every reload writes a new source (new version), commits an UPDATE and waits until GET /hello answers it; reloads run from the first second of each load to its end, paced or back to back.',
      `Event-loop delay: nodejs_eventloop_lag_p99_seconds / _max_seconds of the host's GET /metrics, scraped before and after each window; the host samples it every 50 ms and the figure includes that interval (50 ms = no delay).`,
    ]);
    return rows;
  } finally {
    await stopAll([host]);
    await db.drop().catch(() => {});
    plugins.cleanup();
  }
}

async function reload(sql: import('postgres').Sql, entry: string, original: string, url: string, version: string): Promise<void> {
  writeFileSync(entry, powertableSource(version, original));
  await sql`UPDATE plugins SET version = ${version} WHERE name = 'powertable'`;
  await servedVersion(url, version);
}

/** The host's event-loop delay since the previous scrape (prom-client restarts its histogram at each one). */
async function eventLoopDelay(base: string): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.eE+-]+)`, 'm').exec(text)?.[1] ?? Number.NaN) * 1000;
  return { p99: value('nodejs_eventloop_lag_p99_seconds'), max: value('nodejs_eventloop_lag_max_seconds') };
}

async function servedVersion(url: string, version: string): Promise<void> {
  const deadline = now() + 10_000;
  for (;;) {
    const res = await fetch(url);
    const body = (await res.json()) as { version?: string };
    if (body.version === version) return;
    if (now() > deadline) throw new Error(`${url} did not serve ${version} within 10 s`);
    await sleep(2);
  }
}

if (isMain(import.meta.url)) await main();
