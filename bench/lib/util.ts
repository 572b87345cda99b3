import { appendFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `BENCH_QUICK=1`: fewer rounds and shorter runs, for trying the benchmarks out (figures are noisier). */
export const QUICK = process.env.BENCH_QUICK === '1';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i] as number;
}

export const median = (v: readonly number[]) => {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const ms = (n: number, digits = 1) => `${fmt(n, digits)} ms`;
export const mb = (bytes: number, digits = 1) => `${fmt(bytes / 1024 / 1024, digits)} MB`;
export const ratio = (n: number, digits = 3) => `${fmt(n, digits)}×`;

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** One line of a benchmark's summary. */
export interface Row {
  benchmark: string;
  measure: string;
  result: string;
  /** What the result is compared against, measured in the same run. */
  baseline: string;
  /** Ratio to the baseline, or the comparison with the project's target. */
  verdict: string;
}

export function table(rows: readonly Row[]): string {
  const head: Row = {
    benchmark: 'Benchmark',
    measure: 'Measure',
    result: 'Result',
    baseline: 'Baseline (same run)',
    verdict: 'Ratio / target',
  };
  const cols = ['benchmark', 'measure', 'result', 'baseline', 'verdict'] as const;
  const width = cols.map((c) => Math.max(...[head, ...rows].map((r) => r[c].length)));
  const line = (r: Row) => `| ${cols.map((c, i) => r[c].padEnd(width[i] as number)).join(' | ')} |`;
  const sep = `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(head), sep, ...rows.map(line)].join('\n');
}

/** Prints the rows; when run by `run-all`, also hands them over (one JSON line each). */
export function report(title: string, rows: readonly Row[], notes: readonly string[] = []): void {
  console.log(`\n## ${title}\n`);
  console.log(table(rows));
  for (const n of notes) console.log(`  ${n}`);
  console.log(
    `  machine: ${machine()}; load average at the end ${os
      .loadavg()
      .map((l) => fmt(l, 2))
      .join(' ')}`,
  );
  const out = process.env.BENCH_RESULTS;
  if (out !== undefined && out !== '') {
    for (const r of rows) appendFileSync(out, `${JSON.stringify(r)}\n`);
  }
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${fmt(os.totalmem() / 1024 ** 3, 1)} GB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export function verdict(ok: boolean, text: string): string {
  return `${ok ? 'ok' : 'MISSED'}: ${text}`;
}

export function log(...a: unknown[]): void {
  if (process.env.BENCH_VERBOSE !== '0') console.error('[bench]', ...a);
}

/** True when the module at `url` is the script node was started with (a benchmark run alone). */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(path.resolve(script)).href === url;
}
