/**
 * Request overhead: a plugin route served through the host against a plain
 * Fastify 5 app serving the identical handler (the same plugin code), each in
 * its own process, loaded by autocannon from a third process with the same
 * connections and duration, alternated over several rounds. Also with 100
 * more plugins (10 routes each) loaded, to show routing cost does not grow
 * with the number of plugins.
 */
import path from 'node:path';
import { type LoadResult, load } from './lib/load.js';
import { createDatabase } from './lib/pg.js';
import { copyPowertable, jsonPluginSource, tempDir, writeManyPlugins, writePlugin } from './lib/plugins.js';
import { type ServerProcess, startHost, startPlain, stopAll } from './lib/server.js';
import { fmt, isMain, log, median, QUICK, type Row, ratio, report, verdict } from './lib/util.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 5));
const DURATION = Number(process.env.BENCH_DURATION ?? (QUICK ? 2 : 4));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const MANY = 100;
const ROUTES = [
  { path: '/hello', label: 'GET /hello (powertable)' },
  { path: '/bench/json', label: 'GET /bench/json (10 records, response schema)' },
];

export async function main(): Promise<Row[]> {
  const small = tempDir('ro-small');
  const big = tempDir('ro-big');
  const dbSmall = await createDatabase('ro_small');
  const dbBig = await createDatabase('ro_big');
  const servers: ServerProcess[] = [];
  try {
    const dirs = [copyPowertable(small.dir), writePlugin(small.dir, 'benchjson', jsonPluginSource())];
    copyPowertable(big.dir);
    writePlugin(big.dir, 'benchjson', jsonPluginSource());
    writeManyPlugins(big.dir, MANY, 10);

    log('starting the plain Fastify app and two hosts (2 and 102 plugins)');
    const plain = await startPlain('plain', dirs);
    const hostSmall = await startHost('host-2', {
      DATABASE_URL: dbSmall.url,
      PLUGINS_DIR: small.dir,
      ARTIFACTS_DIR: path.join(small.dir, '.artifacts'),
    });
    const hostBig = await startHost('host-102', {
      DATABASE_URL: dbBig.url,
      PLUGINS_DIR: big.dir,
      ARTIFACTS_DIR: path.join(big.dir, '.artifacts'),
    });
    servers.push(plain, hostSmall, hostBig);
    const targets = [plain, hostSmall, hostBig];
    for (const r of ROUTES) {
      for (const t of targets) {
        const res = await fetch(`${t.url}${r.path}`);
        if (res.status !== 200) throw new Error(`${t.name} ${r.path}: ${res.status}`);
        await res.arrayBuffer();
      }
    }

    log('warming up');
    for (const r of ROUTES) for (const t of targets) await load(`${t.url}${r.path}`, CONNECTIONS, 1);

    const rows: Row[] = [];
    for (const r of ROUTES) {
      const results = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        // rotate the order each round so no target always runs first or last
        const order = targets.map((_, i) => targets[(i + round) % targets.length] as ServerProcess);
        for (const t of order) {
          const res = await load(`${t.url}${r.path}`, CONNECTIONS, DURATION);
          if (res.errors + res.timeouts + res.non2xx > 0) throw new Error(`${t.name} ${r.path}: errors during load`);
          (results.get(t.name) as LoadResult[]).push(res);
        }
        log(
          `${r.path} round ${round + 1}/${ROUNDS}: ${targets.map((t) => `${t.name} ${fmt((results.get(t.name) as LoadResult[])[round]?.rps ?? 0, 0)} rps`).join(', ')}`,
        );
      }
      const of = (t: ServerProcess) => results.get(t.name) as LoadResult[];
      const rps = (t: ServerProcess) => median(of(t).map((x) => x.rps));
      const p99 = (t: ServerProcess) => median(of(t).map((x) => x.p99));
      const ratios = (t: ServerProcess) => of(t).map((x, i) => x.rps / ((of(plain)[i] as LoadResult).rps as number));
      const rSmall = median(ratios(hostSmall));
      const rBig = median(ratios(hostBig));
      const bigVsSmall = median(of(hostBig).map((x, i) => x.rps / ((of(hostSmall)[i] as LoadResult).rps as number)));
      const spread = (v: number[]) => `${fmt(Math.min(...v), 3)}–${fmt(Math.max(...v), 3)}`;
      const base = `plain Fastify ${fmt(rps(plain), 0)} req/s, p99 ${fmt(p99(plain), 0)} ms`;
      rows.push({
        benchmark: 'request overhead',
        measure: `${r.label}, host with 2 plugins`,
        result: `${fmt(rps(hostSmall), 0)} req/s, p99 ${fmt(p99(hostSmall), 0)} ms`,
        baseline: base,
        verdict: verdict(rSmall >= 0.97, `${ratio(rSmall)} (rounds ${spread(ratios(hostSmall))}; target ≥ 0.97×)`),
      });
      rows.push({
        benchmark: 'request overhead',
        measure: `${r.label}, host with ${MANY + 2} plugins (${MANY}×10 routes more)`,
        result: `${fmt(rps(hostBig), 0)} req/s, p99 ${fmt(p99(hostBig), 0)} ms`,
        baseline: base,
        verdict: verdict(rBig >= 0.97, `${ratio(rBig)} (vs 2-plugin host ${ratio(bigVsSmall)}; target ≥ 0.97×)`),
      });
    }
    report('Request overhead', rows, [
      `${ROUNDS} alternated rounds of ${DURATION} s, ${CONNECTIONS} connections each; figures are medians over rounds; ratio = host req/s ÷ plain req/s of the same round.`,
    ]);
    return rows;
  } finally {
    await stopAll(servers);
    await dbSmall.drop().catch(() => {});
    await dbBig.drop().catch(() => {});
    small.cleanup();
    big.cleanup();
  }
}

if (isMain(import.meta.url)) await main();
