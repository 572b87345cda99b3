/**
 * Footprint at rest: resident memory (RSS) and CPU used per second of a host
 * serving only powertable, idle, against a plain Fastify 5 app serving the
 * same plugin code (logger off), in the same run; the same for a second node
 * that only loads published artifacts (`DISCOVER=0`, an empty `PLUGINS_DIR`).
 * Checks that neither node's serving thread loaded TypeScript: a preloaded
 * probe lists the `typescript` files in the main thread's module cache at exit.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuBetweenNs, rssBytes, threadCpuNs } from './lib/cpu.js';
import { load } from './lib/load.js';
import { createDatabase } from './lib/pg.js';
import { copyPowertable, tempDir } from './lib/plugins.js';
import { type ServerProcess, startHost, startPlain, stopAll } from './lib/server.js';
import { fmt, isMain, log, mb, median, QUICK, ROOT, type Row, ratio, report, sleep, verdict } from './lib/util.js';

// longer than the idle time after the start-up batch of type checks (30 s), after which the checker's worker ends
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 35_000);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? (QUICK ? 5000 : 10_000));
const PROBE = pathToFileURL(path.join(ROOT, 'bench', 'lib', 'typescript-probe.mjs')).href;

interface Rest {
  rss: number;
  cpuMsPerSec: number;
}

/** RSS (median of readings once a second) and CPU per second over `IDLE_MS` of rest. */
async function atRest(servers: readonly ServerProcess[]): Promise<Map<string, Rest>> {
  const pids = servers.map((s) => s.proc.pid as number);
  const cpu0 = pids.map(threadCpuNs);
  const rss: number[][] = pids.map(() => []);
  for (let t = 0; t < IDLE_MS; t += 1000) {
    await sleep(1000);
    for (const [i, p] of pids.entries()) rss[i]?.push(rssBytes(p));
  }
  const cpu1 = pids.map(threadCpuNs);
  return new Map(
    servers.map((s, i) => [
      s.name,
      {
        rss: median(rss[i] as number[]),
        cpuMsPerSec: cpuBetweenNs(cpu0[i] as Map<string, number>, cpu1[i] as Map<string, number>) / 1e6 / (IDLE_MS / 1000),
      },
    ]),
  );
}

export async function main(): Promise<Row[]> {
  const a = tempDir('fp-a');
  const b = tempDir('fp-b');
  const db = await createDatabase('fp');
  const servers: ServerProcess[] = [];
  try {
    const pt = copyPowertable(a.dir);
    const probe = (name: string) => ({ NODE_OPTIONS: `--import=${PROBE}`, TS_PROBE_OUT: path.join(a.dir, `${name}.probe.json`) });
    log('footprint: plain Fastify, a compiling host and an artifact-only host (DISCOVER=0), each serving powertable');
    const plain = await startPlain('plain', [pt], 60_000, { PLAIN_LOGGER: 'off' });
    servers.push(plain);
    const host = await startHost('host', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: a.dir,
      ARTIFACTS_DIR: path.join(a.dir, '.artifacts'),
      NODE_ID: 'fp-a',
      ...probe('host'),
    });
    servers.push(host);
    const artifactOnly = await startHost('artifact-only', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: b.dir,
      ARTIFACTS_DIR: path.join(b.dir, '.artifacts'),
      NODE_ID: 'fp-b',
      DISCOVER: '0',
      ...probe('artifact-only'),
    });
    servers.push(artifactOnly);
    // each serves the route, and has answered some requests (as a node at rest in production has)
    for (const s of servers) await load(`${s.url}/hello`, 10, 0, 5000);
    await sleep(SETTLE_MS);
    const rest = await atRest(servers);
    // the same host restarted on its database and artifacts: nothing to compile, so no checker was started
    await host.stop();
    const restarted = await startHost('restarted', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: a.dir,
      ARTIFACTS_DIR: path.join(a.dir, '.artifacts'),
      NODE_ID: 'fp-a',
      ...probe('restarted'),
    });
    servers.push(restarted);
    await load(`${restarted.url}/hello`, 10, 0, 5000);
    await sleep(SETTLE_MS);
    for (const [k, v] of await atRest([plain, restarted])) rest.set(k === 'plain' ? 'plain-again' : k, v);
    await stopAll(servers);
    const tsFiles = (name: string) => {
      const f = path.join(a.dir, `${name}.probe.json`);
      return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as string[]).length : Number.NaN;
    };
    const p = rest.get('plain') as Rest;
    const rows: Row[] = [];
    for (const [s, label, base] of [
      [host, 'host serving powertable, cold start (type-checked it at start)', p],
      [restarted, 'the same host restarted (artifacts cached, nothing to check)', rest.get('plain-again') as Rest],
      [artifactOnly, 'second node, DISCOVER=0 (loads the published artifact)', p],
    ] as const) {
      const r = rest.get(s.name) as Rest;
      const p = base;
      rows.push({
        benchmark: 'footprint',
        measure: `idle RSS, ${label}`,
        result: mb(r.rss),
        baseline: `plain Fastify ${mb(p.rss)}`,
        verdict: verdict(r.rss / p.rss <= 2.5, `${ratio(r.rss / p.rss, 2)} (target ≤ 2.5×)`),
      });
      rows.push({
        benchmark: 'footprint',
        measure: `idle CPU, ${label}`,
        result: `${fmt(r.cpuMsPerSec, 1)} ms per second`,
        baseline: `plain Fastify ${fmt(p.cpuMsPerSec, 1)} ms per second`,
        verdict: `+${fmt(r.cpuMsPerSec - p.cpuMsPerSec, 1)} ms per second (timers: heartbeat, listener ping, event-loop delay)`,
      });
    }
    const files = { host: tsFiles('host'), restarted: tsFiles('restarted'), artifact: tsFiles('artifact-only') };
    rows.push({
      benchmark: 'footprint',
      measure: 'TypeScript files loaded by the serving thread',
      result: `DISCOVER=0 node: ${files.artifact}; compiling node: ${files.host} (restarted: ${files.restarted})`,
      baseline: 'a probe preloaded in each process lists them at exit',
      verdict: verdict(files.artifact === 0 && files.host === 0 && files.restarted === 0, 'target 0 (checks run in a worker)'),
    });
    report('Footprint at rest', rows, [
      `RSS: median of one reading a second over ${IDLE_MS / 1000} s, ${SETTLE_MS / 1000} s after 5,000 requests; CPU: all threads over the same window.`,
    ]);
    return rows;
  } finally {
    await stopAll(servers);
    await db.drop().catch(() => {});
    a.cleanup();
    b.cleanup();
  }
}

if (isMain(import.meta.url)) await main();
