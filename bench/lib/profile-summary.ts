/**
 * Summarises a V8 `.cpuprofile` (from `--cpu-prof`, see `BENCH_CPU_PROF` in
 * server.ts): self time by function and by package, the largest first.
 * `node --import tsx bench/lib/profile-summary.ts <file.cpuprofile> [rows] [last seconds]`
 * (with a last-seconds figure, only the samples of the profile's end, e.g. after start-up).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(url: string): string {
  if (url === '') return '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m !== null) return m[1] as string;
  if (url.startsWith('node:')) return url;
  const src = /\/(src|bench|plugins)\/(.*)$/.exec(url);
  return src === null ? url : `${src[1]}/${src[2]}`;
}

export function summarise(file: string, rows = 40, lastSec = Number.POSITIVE_INFINITY): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const from = p.endTime - lastSec * 1e6;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    t += p.timeDeltas[i] ?? 0;
    if (t >= from) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = p.endTime - Math.max(p.startTime, from);
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id) as ProfileNode;
    const f = `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fn.set(f, (fn.get(f) ?? 0) + us);
    const k = where(n.callFrame.url).replace(/:.*$/, '');
    pkg.set(k, (pkg.get(k) ?? 0) + us);
  }
  const fmt = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`)
      .join('\n');
  return `${file}: ${(total / 1000).toFixed(0)} ms\n-- by package/file --\n${fmt(pkg, 25)}\n-- by function --\n${fmt(fn, rows)}`;
}

const [file, rows, last] = process.argv.slice(2);
if (file !== undefined) console.log(summarise(file, Number(rows ?? 40), last === undefined ? undefined : Number(last)));
