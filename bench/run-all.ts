/**
 * `npm run bench`: runs every benchmark, each in its own process, one after
 * the other, then prints all their rows in one table. Each benchmark also
 * runs alone: `node --import tsx bench/<name>.ts`. `BENCH_QUICK=1` shortens
 * every run (noisier figures); `BENCH_ONLY=compile,startup` picks some.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fmt, machine, now, ROOT, type Row, table } from './lib/util.js';

const BENCHMARKS = [
  'compile',
  'cpu-per-request',
  'request-logging',
  'request-overhead',
  'reload-latency',
  'reload-under-load',
  'startup',
  'footprint',
  'memory',
];
const only = (process.env.BENCH_ONLY ?? '').split(',').filter((s) => s !== '');
const selected = only.length > 0 ? BENCHMARKS.filter((b) => only.includes(b)) : BENCHMARKS;

const results = path.join(tmpdir(), `plugin-host-bench-${process.pid}.jsonl`);
const t0 = now();
const failed: string[] = [];
console.log(`plugin-host benchmarks on ${machine()}`);
for (const name of selected) {
  const start = now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', `${name}.ts`)], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, BENCH_RESULTS: results },
  });
  console.log(`  (${name}: ${fmt((now() - start) / 1000, 0)} s)`);
  if (r.status !== 0) failed.push(name);
}
const rows: Row[] = existsSync(results)
  ? readFileSync(results, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Row)
  : [];
rmSync(results, { force: true });
console.log('\n# Summary\n');
console.log(table(rows));
console.log(`\n${machine()}; total ${fmt((now() - t0) / 1000, 0)} s`);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
