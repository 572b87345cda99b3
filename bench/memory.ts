/**
 * Memory across reloads: RSS and heap (after forced GC) after 10 and after
 * 1,000 reloads of a plugin whose source changes every time, through the host,
 * against naive ESM `import()` with a cache-busting query in the same run.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fmt, isMain, log, mb, QUICK, ROOT, type Row, report, verdict } from './lib/util.js';

const FIRST = 10;
const TOTAL = Number(process.env.BENCH_MEMORY_RELOADS ?? (QUICK ? 200 : 1000));

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
}

function run(mode: 'host' | 'esm'): Promise<Record<string, Mem>> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', path.join(ROOT, 'bench', 'memory-worker.ts'), mode, String(FIRST), String(TOTAL)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as Record<string, Mem>);
      } catch {
        reject(new Error(`memory worker (${mode}) exited ${code}: ${out.slice(-500)}`));
      }
    });
  });
}

export async function main(): Promise<Row[]> {
  log(`memory: ${TOTAL} reloads through the host, then ${TOTAL} ESM imports`);
  const host = await run('host');
  const esm = await run('esm');
  const n = TOTAL - FIRST;
  const growth = (m: Record<string, Mem>, k: keyof Mem) => (m[`after${TOTAL}`] as Mem)[k] - (m[`after${FIRST}`] as Mem)[k];
  const line = (m: Record<string, Mem>) =>
    `heap ${mb((m[`after${FIRST}`] as Mem).heapUsed)} → ${mb((m[`after${TOTAL}`] as Mem).heapUsed)}, RSS ${mb((m[`after${FIRST}`] as Mem).rss)} → ${mb((m[`after${TOTAL}`] as Mem).rss)}`;
  const perReload = (m: Record<string, Mem>) => growth(m, 'heapUsed') / n / 1024;
  const rows: Row[] = [
    {
      benchmark: 'memory',
      measure: `host: after ${FIRST} → after ${TOTAL} reloads (source changes each time)`,
      result: line(host),
      baseline: `naive import(): ${line(esm)}`,
      verdict: '',
    },
    {
      benchmark: 'memory',
      measure: `growth over the ${n} reloads`,
      result: `heap ${fmt(perReload(host), 2)} KB/reload, RSS ${mb(growth(host, 'rss'))}`,
      baseline: `naive import(): heap ${fmt(perReload(esm), 2)} KB/reload, RSS ${mb(growth(esm, 'rss'))}`,
      verdict: verdict(perReload(host) <= 1 && growth(host, 'rss') <= 20 * 1024 * 1024, 'target ≤ 1 KB/reload heap, ≤ 20 MB RSS'),
    },
  ];
  (rows[0] as Row).verdict = `heap growth ${fmt(growth(host, 'heapUsed') / Math.max(1, growth(esm, 'heapUsed')), 3)}× the import() figure`;
  report('Memory across reloads (forced GC before each reading)', rows, [
    `The plugin carries a ${16} KB constant that changes with its version, so a version kept alive shows. The host path includes the type check, bundle, PostgreSQL round trips and retirement of the old version.`,
  ]);
  return rows;
}

if (isMain(import.meta.url)) await main();
