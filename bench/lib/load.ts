import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './util.js';

export interface LoadResult {
  /** Mean requests per second. */
  rps: number;
  total: number;
  p50: number;
  p99: number;
  max: number;
  /** Connection errors (refused, reset, …). */
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  /** Completed requests in each second of the run. */
  perSecond: number[];
}

/** Runs autocannon against `url` from a separate process: for `durationSec`, or exactly `amount` requests. */
export function load(url: string, connections: number, durationSec: number, amount?: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'bench', 'lib', 'load-worker.ts'),
        JSON.stringify({ url, connections, durationSec, ...(amount === undefined ? {} : { amount }) }),
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('error', reject);
    p.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        const r = JSON.parse(line) as LoadResult & { error?: string };
        if (r.error !== undefined) reject(new Error(`load failed: ${r.error}`));
        else resolve(r);
      } catch {
        reject(new Error(`load worker exited ${code} without a result: ${out.slice(0, 500)}`));
      }
    });
  });
}
