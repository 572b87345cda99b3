import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_HOOK_TIMEOUT_MS, loadConfig } from '../../config/index.js';
import { describeError, HostError } from '../../errors/index.js';
import { scaffoldPlugin } from '../scaffold.js';
import { out, parse, printError, short } from './args.js';

// The commands that need no database: new (a plugin's scaffold) and build (compile and prove a directory).

export async function create(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', 'new takes one plugin NAME (see plugin-host new --help)');
  const name = positionals[0] as string;
  const pluginsDir =
    values['plugins-dir'] === undefined ? loadConfig(process.env, {}).pluginsDir : path.resolve(values['plugins-dir'] as string);
  const { dir, files, route } = scaffoldPlugin(pluginsDir, name);
  const result = await build(dir, true); // a scaffold that does not compile would be a bug: say so now
  if (!result.ok) {
    printError(result.error);
    return 1;
  }
  const rel = (p: string) => path.relative(process.cwd(), p) || '.';
  out(
    values.json === true,
    { name, dir, files, route },
    [
      `created ${rel(dir)}/ (serves GET ${route})`,
      ...files.map((f) => `  ${rel(f)}`),
      '',
      'next:',
      `  node --import tsx --test ${rel(files[1] as string)}   # from the project root`,
      `  plugin-host build ${rel(dir)}`,
      '  a running server registers it by itself (discovery at start, or WATCH=1), or: POST /plugins {"path":"' + name + '"}',
    ].join('\n'),
  );
  return 0;
}

async function build(
  dir: string,
  typecheck: boolean,
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; error: unknown }> {
  // the compiler loads TypeScript and esbuild: only when a command needs it
  const [{ Compiler }, { prove }, { InlineRuntime }, { createLogger }] = await Promise.all([
    import('../../compiler/index.js'),
    import('../../admin/index.js'),
    import('../../runtime/index.js'),
    import('../../logger.js'),
  ]);
  const artifacts = mkdtempSync(path.join(tmpdir(), 'plugin-host-build-'));
  try {
    const name = path.basename(dir);
    const compiler = new Compiler({ artifactsDir: artifacts, pluginsDir: process.cwd(), typecheck });
    // the same compile-and-prove path the server takes before it publishes a version
    const { artifact, metadata } = await prove(
      { compiler, runtime: new InlineRuntime(), log: createLogger('silent'), hookTimeoutMs: DEFAULT_HOOK_TIMEOUT_MS },
      name,
      dir,
    );
    return {
      ok: true,
      value: {
        name,
        version: metadata.version,
        hash: artifact.hash,
        size: Buffer.byteLength(artifact.bundle),
        endpoints: metadata.endpoints ?? [],
      },
    };
  } catch (err) {
    return { ok: false, error: err };
  } finally {
    rmSync(artifacts, { recursive: true, force: true });
  }
}

export async function buildCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'no-typecheck': { type: 'boolean' } });
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', 'build takes one plugin directory (see plugin-host build --help)');
  const dir = path.resolve(positionals[0] as string);
  const r = await build(dir, values['no-typecheck'] !== true);
  const json = values.json === true;
  if (r.ok) {
    const v = r.value;
    out(
      json,
      { ok: true, ...v },
      `ok ${String(v.name)} ${String(v.version)} (${short(v.hash)}, ${String(v.size)} bytes, ${(v.endpoints as unknown[]).length} endpoint(s))`,
    );
    return 0;
  }
  const err = r.error;
  if (json) {
    const e = err instanceof HostError ? err : undefined;
    console.log(
      JSON.stringify({ ok: false, code: e?.code ?? 'PH_ERR_INTERNAL', message: describeError(err), details: e?.details ?? null }, null, 2),
    );
  } else {
    printError(err);
  }
  return 1;
}
