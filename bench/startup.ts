/**
 * Start-up: time from spawning `plugin-host serve` to the first 200 of
 * `GET /readyz`, with 1, 10 and 100 plugins, cold (new database, empty
 * artifacts directory: every plugin is type-checked and bundled) and warm
 * (restart on the same database and artifacts: nothing is rebuilt). The
 * baseline is the same host with no plugin at all, measured in the same run,
 * and every figure is also given as a multiple of `node -e ''` (spawn to exit)
 * on this machine in the same run. `BENCH_HOST_CMD` starts another build of
 * the host (for instance a compiled one) instead of `bin/plugin-host.mjs`.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createDatabase } from './lib/pg.js';
import { tempDir, writeManyPlugins } from './lib/plugins.js';
import { hostCommand, startHost } from './lib/server.js';
import { fmt, isMain, log, median, ms, now, QUICK, type Row, ratio, report, verdict } from './lib/util.js';

const REPEATS = Number(process.env.BENCH_REPEATS ?? (QUICK ? 1 : 3));
const COUNTS = [0, 1, 10, 100];

/** One cold start on a new database and artifacts directory, then `warm` restarts on them. */
async function coldThenWarm(count: number, warm: number): Promise<{ cold: number; warm: number[] }> {
  const plugins = tempDir(`su-${count}`);
  const db = await createDatabase(`su_${count}`);
  try {
    writeManyPlugins(plugins.dir, count, 10);
    const env = { DATABASE_URL: db.url, PLUGINS_DIR: plugins.dir, ARTIFACTS_DIR: path.join(plugins.dir, '.artifacts') };
    const first = await startHost(`startup-${count}-cold`, env);
    await first.stop();
    const warmMs: number[] = [];
    for (let i = 0; i < warm; i++) {
      const s = await startHost(`startup-${count}-warm`, env);
      // every plugin must be served, not just the process ready
      if (count > 0) {
        const res = await fetch(`${s.url}/p${String(count - 1).padStart(3, '0')}/version`);
        if (res.status !== 200) throw new Error(`plugin ${count - 1} not served after start (${res.status})`);
      }
      warmMs.push(s.readyMs);
      await s.stop();
    }
    return { cold: first.readyMs, warm: warmMs };
  } finally {
    await db.drop().catch(() => {});
    plugins.cleanup();
  }
}

/** Spawn to exit of `node -e ''`: what any Node process costs to start here (median of 9). */
function bareNodeMs(): number {
  const runs: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = now();
    spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
    runs.push(now() - t0);
  }
  return median(runs);
}

export async function main(): Promise<Row[]> {
  log(`start-up of ${hostCommand().join(' ')} serve`);
  const bare: number[] = [bareNodeMs()];
  const cold = new Map<number, number[]>();
  const warm = new Map<number, number[]>();
  for (let r = 0; r < REPEATS; r++) {
    for (const n of COUNTS) {
      const res = await coldThenWarm(n, 1);
      cold.set(n, [...(cold.get(n) ?? []), res.cold]);
      warm.set(n, [...(warm.get(n) ?? []), ...res.warm]);
      log(`start-up ${n} plugins, run ${r + 1}/${REPEATS}: cold ${fmt(res.cold, 0)} ms, warm ${fmt(res.warm[0] ?? Number.NaN, 0)} ms`);
    }
    bare.push(bareNodeMs());
  }
  const node = median(bare);
  const x = (v: number) => ratio(v / node, 1);
  const c = (n: number) => median(cold.get(n) ?? []);
  const w = (n: number) => median(warm.get(n) ?? []);
  const spread = (v: number[]) => `${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)}`;
  const rows: Row[] = [
    {
      benchmark: 'start-up',
      measure: 'empty host (no plugin), cold / warm',
      result: `${ms(c(0), 0)} (${spread(cold.get(0) ?? [])}) / ${ms(w(0), 0)} (${spread(warm.get(0) ?? [])})`,
      baseline: `node -e '': ${ms(node, 0)}`,
      verdict: verdict(w(0) <= 500, `${x(c(0))} / ${x(w(0))} node -e '' (target ≤ 500 ms)`),
    },
  ];
  for (const n of COUNTS.filter((x) => x > 0)) {
    const coldExtra = c(n) - c(0);
    const warmExtra = w(n) - w(0);
    rows.push({
      benchmark: 'start-up',
      measure: `${n} plugin${n === 1 ? '' : 's'} (10 routes each), cold / warm`,
      result: `${ms(c(n), 0)} (${spread(cold.get(n) ?? [])}) / ${ms(w(n), 0)} (${spread(warm.get(n) ?? [])})`,
      baseline: `no plugin: ${ms(c(0), 0)} / ${ms(w(0), 0)}; node -e '': ${ms(node, 0)}`,
      verdict:
        n === 100
          ? verdict(
              coldExtra <= 3000 && warmExtra <= 1000,
              `plugins add ${ms(coldExtra, 0)} cold (≤ 3 s), ${ms(warmExtra, 0)} warm (≤ 1 s); ${x(c(n))} / ${x(w(n))} node -e ''`,
            )
          : `plugins add ${ms(coldExtra, 0)} cold, ${ms(warmExtra, 0)} warm; ${x(c(n))} / ${x(w(n))} node -e ''`,
    });
  }
  const perCold = (c(100) - c(10)) / 90;
  const perWarm = (w(100) - w(10)) / 90;
  rows.push({
    benchmark: 'start-up',
    measure: 'cost per additional plugin (10 → 100)',
    result: `${ms(perCold)} cold, ${ms(perWarm)} warm`,
    baseline: `fixed: ${ms(c(0), 0)} / ${ms(w(0), 0)}`,
    verdict: 'linear in the plugin count',
  });
  report('Start-up (spawn to GET /readyz 200, PostgreSQL)', rows, [
    `${REPEATS} cold and ${REPEATS} warm starts per count, medians (range). Includes Node and module loading; "plugins add" subtracts the no-plugin start of the same run; node -e '' is the median of ${bare.length} medians of 9 spawns spread over the run.`,
    `host command: ${hostCommand().join(' ')} serve`,
  ]);
  return rows;
}

if (isMain(import.meta.url)) await main();
