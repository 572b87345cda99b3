/**
 * Reload latency: from an SQL UPDATE that changes a plugin's version (its new
 * source written just before, so the compile is part of the figure) to the
 * first response served by the new version, on the node that has the source
 * (it compiles, loads, swaps and publishes the artifact) and on a second node
 * sharing the PostgreSQL database without the source (it loads the published
 * artifact). Run with the type check on and off, to show how much is compile.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createDatabase } from './lib/pg.js';
import { copyPowertable, powertableSource, tempDir } from './lib/plugins.js';
import { type ServerProcess, startHost, stopAll } from './lib/server.js';
import { isMain, log, median, ms, now, QUICK, quantile, type Row, report, sleep, verdict } from './lib/util.js';

const RELOADS = Number(process.env.BENCH_RELOADS ?? (QUICK ? 20 : 100));
const WARMUP = 5;
const TIMEOUT_MS = 10_000;
/**
 * Pause between two polls of one node. Polled back to back (0), the benchmark process and both servers' main
 * threads keep both cores busy, and the type check and esbuild of the reload it measures wait for a core: the
 * figure then measures the polling more than the reload (see BENCHMARKS.md, where both are compared).
 */
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 1);

interface Sample {
  sameMs: number;
  otherMs: number;
  commitMs: number;
  /** Load + initialize + swap on the compiling node, as it logged it. */
  loadMs: number | undefined;
  /** The type check on the compiling node (its worker's answer included), as it logged it. */
  checkMs: number | undefined;
}

/** Polls `url` until its JSON `version` is `version`; returns the time since `t0`. */
async function firstServed(url: string, version: string, t0: number): Promise<number> {
  for (;;) {
    const res = await fetch(url);
    const body = (await res.json()) as { version?: string };
    const t = now();
    if (res.status === 200 && body.version === version) return t - t0;
    if (t - t0 > TIMEOUT_MS) throw new Error(`${url} still not serving ${version} after ${TIMEOUT_MS} ms`);
    if (POLL_MS > 0) await sleep(POLL_MS);
  }
}

async function runMode(typecheck: boolean, minor: number): Promise<Sample[]> {
  const a = tempDir('rl-a');
  const b = tempDir('rl-b');
  const db = await createDatabase('rl');
  let nodeA: ServerProcess | undefined;
  let nodeB: ServerProcess | undefined;
  try {
    const dir = copyPowertable(a.dir);
    const entry = path.join(dir, 'main.ts');
    const original = readFileSync(entry, 'utf8');
    const tc = typecheck ? '1' : '0';
    nodeA = await startHost('node-a', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: a.dir,
      ARTIFACTS_DIR: path.join(a.dir, '.artifacts'),
      NODE_ID: 'bench-node-a',
      TYPECHECK: tc,
      LOG_LEVEL: 'info',
    });
    nodeB = await startHost('node-b', {
      DATABASE_URL: db.url,
      PLUGINS_DIR: b.dir,
      ARTIFACTS_DIR: path.join(b.dir, '.artifacts'),
      NODE_ID: 'bench-node-b',
      TYPECHECK: tc,
      DISCOVER: '0',
    });
    const loadMs = new Map<string, number>();
    const checkMs = new Map<string, number>();
    nodeA.onLine = (line) => {
      if (!line.includes('"msg":"plugin powertable reloaded')) return;
      try {
        const o = JSON.parse(line) as { version?: string; ms?: number; compile?: { typecheckMs?: number } };
        if (o.version !== undefined && o.ms !== undefined) loadMs.set(o.version, o.ms);
        if (o.version !== undefined && o.compile?.typecheckMs !== undefined) checkMs.set(o.version, o.compile.typecheckMs);
      } catch {
        // not a log line
      }
    };
    const urlA = `${nodeA.url}/hello`;
    const urlB = `${nodeB.url}/hello`;
    await firstServed(urlB, '0.1.0', now());

    const samples: Sample[] = [];
    for (let i = 0; i < WARMUP + RELOADS; i++) {
      const version = `1.${minor}.${i}`;
      writeFileSync(entry, powertableSource(version, original));
      const t0 = now();
      await db.sql`UPDATE plugins SET version = ${version} WHERE name = 'powertable'`;
      const commitMs = now() - t0;
      const [sameMs, otherMs] = await Promise.all([firstServed(urlA, version, t0), firstServed(urlB, version, t0)]);
      if (i >= WARMUP) samples.push({ sameMs, otherMs, commitMs, loadMs: undefined, checkMs: undefined });
      await sleep(20);
      const s = samples.at(-1);
      if (s !== undefined && i >= WARMUP) {
        s.loadMs = loadMs.get(version);
        s.checkMs = checkMs.get(version);
      }
    }
    return samples;
  } finally {
    await stopAll([nodeA, nodeB]);
    await db.drop().catch(() => {});
    a.cleanup();
    b.cleanup();
  }
}

export async function main(): Promise<Row[]> {
  log(`reload latency: ${RELOADS} reloads with the type check, then ${RELOADS} without`);
  const withTc = await runMode(true, 1);
  const withoutTc = await runMode(false, 2);
  const q = (s: Sample[], k: 'sameMs' | 'otherMs', p: number) =>
    quantile(
      s.map((x) => x[k]),
      p,
    );
  const loads = (s: Sample[]) => s.map((x) => x.loadMs).filter((x): x is number => x !== undefined);
  const checks = withTc.map((x) => x.checkMs).filter((x): x is number => x !== undefined);
  const commit = median(withTc.map((x) => x.commitMs));
  const compileShare = median(withTc.map((x) => x.sameMs)) - median(withoutTc.map((x) => x.sameMs));
  const rows: Row[] = [
    {
      benchmark: 'reload latency',
      measure: `same node (compiles), type check on, ${withTc.length} reloads`,
      result: `p50 ${ms(q(withTc, 'sameMs', 0.5))}, p99 ${ms(q(withTc, 'sameMs', 0.99))}`,
      baseline: `type check off: p50 ${ms(q(withoutTc, 'sameMs', 0.5))}, p99 ${ms(q(withoutTc, 'sameMs', 0.99))}`,
      verdict: verdict(q(withTc, 'sameMs', 0.99) <= 50, 'target p99 ≤ 50 ms'),
    },
    {
      benchmark: 'reload latency',
      measure: `second node (loads the published artifact), ${withTc.length} reloads`,
      result: `p50 ${ms(q(withTc, 'otherMs', 0.5))}, p99 ${ms(q(withTc, 'otherMs', 0.99))}`,
      baseline: `type check off: p50 ${ms(q(withoutTc, 'otherMs', 0.5))}, p99 ${ms(q(withoutTc, 'otherMs', 0.99))}`,
      verdict: verdict(q(withTc, 'otherMs', 0.99) <= 75, 'target p99 ≤ 75 ms'),
    },
    {
      benchmark: 'reload latency',
      measure: 'of which the type check, same node (its log)',
      result: `p50 ${ms(median(checks))}, p99 ${ms(quantile(checks, 0.99))}; p50 difference on − off ${ms(compileShare)}`,
      baseline: `load+initialize+swap p50 ${ms(median(loads(withTc)))} (waits for the check), UPDATE round trip p50 ${ms(commit)}`,
      verdict: 'see the compile benchmark for a warm in-process check',
    },
  ];
  report('Reload latency', rows, [
    `t0 is taken just before the UPDATE is sent; "served" is the first GET /hello answering the new version (each node polled ${
      POLL_MS > 0 ? `every ${POLL_MS} ms after each answer` : 'back to back'
    }).`,
  ]);
  return rows;
}

if (isMain(import.meta.url)) await main();
