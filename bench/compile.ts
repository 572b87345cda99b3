/**
 * Compile: type check and bundle timings of one small plugin (warm: the
 * checker's caches filled, the plugin source changed before each run) and of
 * 100 plugins, against a fresh default TypeScript program (what a checker
 * without caches pays every time), measured in the same run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { Compiler } from '../src/compiler/index.js';
import { SDK_ENTRY } from '../src/compiler/sdk-path.js';
import { powertableSource, tempDir, writeManyPlugins, writePlugin } from './lib/plugins.js';
import { fmt, isMain, median, ms, now, QUICK, quantile, ROOT, type Row, ratio, report, verdict } from './lib/util.js';

const RUNS = Number(process.env.BENCH_COMPILE_RUNS ?? (QUICK ? 20 : 50));
const FRESH_RUNS = QUICK ? 2 : 3;

/** A type check by a fresh default program and compiler host: no cache at all. */
function freshCheck(entry: string): number {
  const t = now();
  const program = ts.createProgram({
    rootNames: [entry],
    options: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2023.d.ts'],
      types: ['node'],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      paths: { 'plugin-host/sdk': [SDK_ENTRY] },
    },
  });
  const d = ts.getPreEmitDiagnostics(program);
  if (d.some((x) => x.category === ts.DiagnosticCategory.Error)) throw new Error('fresh program: unexpected type errors');
  return now() - t;
}

export async function main(): Promise<Row[]> {
  const one = tempDir('cmp-one');
  const many = tempDir('cmp-many');
  try {
    const original = readFileSync(path.join(ROOT, 'plugins', 'powertable', 'main.ts'), 'utf8');
    const dir = writePlugin(one.dir, 'powertable', original);
    const entry = path.join(dir, 'main.ts');
    const compiler = new Compiler({ artifactsDir: path.join(one.dir, '.artifacts'), pluginsDir: one.dir, typecheck: true });
    const noCheck = new Compiler({ artifactsDir: path.join(one.dir, '.artifacts-nocheck'), pluginsDir: one.dir, typecheck: false });

    const t0 = now();
    const first = await compiler.compile(dir);
    const firstMs = now() - t0;
    const total: number[] = [];
    const check: number[] = [];
    const hash: number[] = [];
    for (let i = 0; i < RUNS + 5; i++) {
      writeFileSync(entry, powertableSource(`0.2.${i}`, original));
      const t = now();
      const r = await compiler.compile(dir);
      const elapsed = now() - t;
      if (!r.built) throw new Error('expected a build');
      if (i < 5) continue;
      total.push(elapsed);
      check.push(r.timings.typecheckMs);
      hash.push(r.timings.hashMs);
    }
    // the same plugin with a handler that reads its request (most real handlers do): Fastify's request types in the check
    const withRequest = original.replace('async () => ({ message:', 'async (request) => ({ url: request.url, message:');
    if (withRequest === original) throw new Error('powertable changed: the request variant no longer applies');
    const requestChecks: number[] = [];
    for (let i = 0; i < RUNS + 5; i++) {
      writeFileSync(entry, powertableSource(`0.4.${i}`, withRequest));
      const r = await compiler.compile(dir);
      if (i >= 5) requestChecks.push(r.timings.typecheckMs);
    }
    const bundleOnly: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      writeFileSync(entry, powertableSource(`0.3.${i}`, original));
      const t = now();
      await noCheck.compile(dir);
      bundleOnly.push(now() - t);
    }
    const fresh: number[] = [];
    for (let i = 0; i < FRESH_RUNS; i++) fresh.push(freshCheck(entry));

    // 100 plugins, each compiled once, on the warm compiler (as a start-up with an empty artifacts directory)
    const dirs = writeManyPlugins(many.dir, 100, 10);
    const manyCompiler = new Compiler({ artifactsDir: path.join(many.dir, '.artifacts'), pluginsDir: many.dir, typecheck: true });
    await manyCompiler.compile(dir); // fills the shared caches, like the first plugin of a start-up
    const tm = now();
    const manyChecks: number[] = [];
    for (const d of dirs) manyChecks.push((await manyCompiler.compile(d)).timings.typecheckMs);
    const manyMs = now() - tm;
    const manyNoCheck = new Compiler({ artifactsDir: path.join(many.dir, '.artifacts-nocheck'), pluginsDir: many.dir, typecheck: false });
    const tn = now();
    for (const d of dirs) await manyNoCheck.compile(d);
    const manyNoCheckMs = now() - tn;
    const tw = now();
    for (const d of dirs) if ((await manyCompiler.compile(d)).built) throw new Error('expected a cached artifact');
    const manyCachedMs = now() - tw;

    const rows: Row[] = [
      {
        benchmark: 'compile',
        measure: `one small plugin (powertable), warm, type check + bundle, ${RUNS} source changes`,
        result: `p50 ${ms(median(total))}, p90 ${ms(quantile(total, 0.9))}`,
        baseline: `fresh default program: type check alone ${ms(median(fresh), 0)}`,
        verdict: verdict(median(total) <= 30, `target ≤ 30 ms (${ratio(median(fresh) / median(check), 1)} faster type check than fresh)`),
      },
      {
        benchmark: 'compile',
        measure: '  of which type check / content hash (esbuild bundles during the check)',
        result: `${ms(median(check))} / ${ms(median(hash), 2)}`,
        baseline: `without type check: ${ms(median(bundleOnly))} per compile`,
        verdict: `type check p90 ${ms(quantile(check, 0.9))}`,
      },
      {
        benchmark: 'compile',
        measure: '  the same plugin, its handler reading `request` (Fastify request types checked)',
        result: `type check p50 ${ms(median(requestChecks))}, p90 ${ms(quantile(requestChecks, 0.9))}`,
        baseline: `without: p50 ${ms(median(check))}`,
        verdict: 'with the variance of FastifyInstance declared (see BENCHMARKS.md)',
      },
      {
        benchmark: 'compile',
        measure: 'first compile after process start (cold checker)',
        result: ms(firstMs, 0),
        baseline: `warm p50 ${ms(median(total))}`,
        verdict: `paid once per process (built: ${first.built})`,
      },
      {
        benchmark: 'compile',
        measure: '100 plugins (10 routes each), type check + bundle',
        result: `${ms(manyMs, 0)} (${ms(manyMs / 100)} each; type check p50 ${ms(median(manyChecks))})`,
        baseline: `without type check ${ms(manyNoCheckMs, 0)}; artifacts cached ${ms(manyCachedMs, 0)}`,
        verdict: `${fmt(manyMs / manyNoCheckMs, 1)}× the bundle-only time`,
      },
    ];
    report('Compile (in process)', rows, [
      'Warm = the checker has parsed the standard library, @types/node, Fastify and the SDK once; each run changes the plugin source first, so nothing is served from the artifact cache.',
    ]);
    return rows;
  } finally {
    one.cleanup();
    many.cleanup();
  }
}

if (isMain(import.meta.url)) await main();
