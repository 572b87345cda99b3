import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type ConfigOverrides, loadConfig } from '../config/index.js';
import type { PluginWithEndpoints } from '../db/index.js';
import { describeError, HostError, isHostError } from '../errors/index.js';
// the view module alone: the http folder's index would load Fastify's plugins into every CLI command
import { pluginView } from '../http/plugin-view.js';
import { configPatchOf } from './config-args.js';
import { scaffoldPlugin } from './scaffold.js';
import type { Target } from './target.js';

const CONNECTION_HELP = `Where it acts:
  With DATABASE_URL (or --database-url) the command writes PostgreSQL directly; running servers
  follow through the notification, and none needs to run. With the embedded database (DATA_DIR),
  a running server holds it: the command then goes through that server's admin API, authenticated
  with ADMIN_TOKEN (or --token); with no server running it opens DATA_DIR itself.

Options:
  --database-url URL   DATABASE_URL
  --data-dir DIR       DATA_DIR       (default ./data)
  --plugins-dir DIR    PLUGINS_DIR    (default ./plugins)
  --token TOKEN        ADMIN_TOKEN    (only used to reach a running server)
  --json               print JSON instead of text
  -h, --help           show this help`;

export const COMMAND_USAGE: Record<string, string> = {
  list: `Usage: plugin-host list [--status active|inactive] [options]

Lists the registered plugins: desired status, version, generation, artifact hash, and how many
live nodes serve each one (with a server's admin API: this server's state and last error).

${CONNECTION_HELP}
  --status S           only plugins with this desired status`,
  enable: `Usage: plugin-host enable NAME [options]

Sets the plugin's desired status to active; every node loads it.

${CONNECTION_HELP}`,
  disable: `Usage: plugin-host disable NAME [options]

Sets the plugin's desired status to inactive; every node unloads it.

${CONNECTION_HELP}`,
  reload: `Usage: plugin-host reload NAME [options]

Recompiles the plugin from its source in PLUGINS_DIR (when this machine has it; an uploaded plugin
from its archive stored in the database), publishes the artifact and bumps its generation, so every node reloads it. A compile error is printed with
file:line:column and nothing changes (exit 1).

${CONNECTION_HELP}`,
  remove: `Usage: plugin-host remove NAME [options]

Deletes the plugin's row; every node unloads it. Its source directory is left alone, and the
removal is remembered: discovery and watch mode do not register it again until it is registered
explicitly (plugin-host register).

${CONNECTION_HELP}`,
  isolate: `Usage: plugin-host isolate NAME inline|worker|default [options]

Sets where the plugin runs: inline (the serving thread), worker (a worker thread of its own: a hang,
process.exit() or heap exhaustion ends only that worker), or default (PLUGIN_ISOLATION). Every node
reloads it blue/green into that runtime.

${CONNECTION_HELP}`,
  register: `Usage: plugin-host register DIR [--inactive] [options]

Registers the plugin directory DIR (a name inside PLUGINS_DIR, or a path directly inside it):
compiles and trial-loads it, then writes its row; every node loads it. Registering a removed
plugin brings it back.

${CONNECTION_HELP}
  --inactive           register it inactive (nothing serves it until enabled)`,
  config: `Usage: plugin-host config get NAME [options]
       plugin-host config set NAME KEY=VALUE... [options]
       plugin-host config set NAME --file config.json [options]

get prints the plugin's stored configuration (secret references as written), its revision and
the schema it is checked against. set validates against that schema and stores: with KEY=VALUE
pairs, those keys change and the others stay (a JSON merge patch: a.b=1 sets a nested key,
KEY=null removes one); with --file, the file is the whole configuration. VALUE is read as JSON
when it is JSON (5, true, "text", {"$env":"API_KEY"}), as a string otherwise. Every node then
reloads the plugin with it (or calls its onConfigChange). Invalid values are refused naming each
field, and nothing changes (exit 1).

${CONNECTION_HELP}
  --file FILE          the whole configuration, as a JSON object (set)`,
  versions: `Usage: plugin-host versions NAME [options]

Lists the versions recorded for the plugin, newest first: version, artifact hash, when and by
whom it was published, and which live nodes serve it now. A pinned version is marked.

${CONNECTION_HELP}`,
  rollback: `Usage: plugin-host rollback NAME VERSION|HASH [options]

Pins the plugin to a stored version (a semver version, or an artifact hash from plugin-host
versions): every node serves it from the artifact store, whatever its source says, until
plugin-host reload NAME unpins it. Refused while a staged rollout of the plugin is in progress.

${CONNECTION_HELP}`,
  new: `Usage: plugin-host new NAME [--plugins-dir DIR]

Creates DIR/NAME (default ./plugins/NAME) with main.ts, a plugin serving GET /NAME, and
main.test.ts, its test. Checks that the new plugin compiles. Run its test from the project root:
  node --import tsx --test plugins/NAME/main.test.ts

Options:
  --plugins-dir DIR    PLUGINS_DIR (default ./plugins)
  -h, --help           show this help`,
  build: `Usage: plugin-host build DIR [--no-typecheck] [--json]

Compiles and validates the plugin in DIR without registering or serving it: type check against
the SDK, bundle, evaluate, newPlugin(), metadata (name must equal the directory name). Errors are
printed as file:line:column: message; the exit code is 1 when the plugin is not valid.

Options:
  --no-typecheck       bundle only (skip the TypeScript check)
  --json               print the result as JSON
  -h, --help           show this help`,
};

const EXIT_USAGE = 2;

function out(json: boolean, value: unknown, text: string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text);
}

/** Prints an error as `plugin-host: CODE: message`, then each diagnostic as `file:line:column: message`. */
export function printError(err: unknown): void {
  const code = err instanceof HostError ? err.code : 'PH_ERR_INTERNAL';
  console.error(`plugin-host: ${code}: ${describeError(err)}`);
}

function parse(
  argv: string[],
  extra: Record<string, { type: 'string' | 'boolean' }> = {},
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'database-url': { type: 'string' },
        'data-dir': { type: 'string' },
        'plugins-dir': { type: 'string' },
        'artifacts-dir': { type: 'string' },
        'log-level': { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...extra,
      },
    });
  } catch (err) {
    throw new HostError('PH_ERR_USAGE', describeError(err));
  }
}

function overridesOf(values: Record<string, unknown>): ConfigOverrides {
  return {
    databaseUrl: values['database-url'] as string | undefined,
    dataDir: values['data-dir'] as string | undefined,
    pluginsDir: values['plugins-dir'] as string | undefined,
    artifactsDir: values['artifacts-dir'] as string | undefined,
    logLevel: values['log-level'] as string | undefined,
  };
}

function short(hash: unknown): string {
  return typeof hash === 'string' ? hash.slice(0, 12) : '-';
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function callServer(...args: Parameters<typeof import('./target.js').callServer>) {
  return (await import('./target.js')).callServer(...args);
}

async function withTarget<T>(values: Record<string, unknown>, fn: (t: Target) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env, overridesOf(values));
  const token = (values.token as string | undefined) ?? config.adminToken;
  const { openTarget } = await import('./target.js');
  const t = await openTarget(config, token);
  try {
    return await fn(t);
  } finally {
    await t.close().catch(() => {});
  }
}

async function list(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { status: { type: 'string' } });
  if (positionals.length > 0) throw new HostError('PH_ERR_USAGE', `list takes no arguments (got ${positionals.join(' ')})`);
  const status = values.status as string | undefined;
  if (status !== undefined && status !== 'active' && status !== 'inactive') {
    throw new HostError('PH_ERR_USAGE', `--status must be active or inactive, got "${status}"`);
  }
  const json = values.json === true;
  return withTarget(values, async (t) => {
    if (t.kind === 'server') {
      const rows = (await callServer(t, 'GET', `/plugins${status ? `?status=${status}` : ''}`)) as Record<string, unknown>[];
      const lines = [['NAME', 'STATUS', 'STATE', 'VERSION', 'GEN', 'HASH', 'LAST ERROR']];
      for (const r of rows) {
        const err = r.last_error as { code?: string } | null;
        lines.push([
          String(r.name),
          String(r.status ?? '(unregistered)'),
          String(r.state),
          String(r.version ?? '-'),
          String(r.generation ?? '-'),
          short(r.artifact_hash),
          err?.code ?? '',
        ]);
      }
      out(json, rows, rows.length === 0 ? 'no plugins registered' : table(lines));
      return 0;
    }
    const rows: PluginWithEndpoints[] = await t.repo.list(status === undefined ? {} : { status });
    const nodes = await t.repo.nodeViews(undefined, 15_000);
    const views = rows.map((r) => {
      const mine = nodes.filter((n) => n.pluginName === r.name);
      const { state: _s, serving: _v, last_error: _e, node_id: _n, ...v } = pluginView(r, undefined, mine, '');
      return v;
    });
    const lines = [['NAME', 'STATUS', 'VERSION', 'GEN', 'HASH', 'SERVING NODES', 'ERRORS']];
    for (const r of rows) {
      const mine = nodes.filter((n) => n.pluginName === r.name);
      const serving = mine.filter((n) => n.state === 'serving').length;
      const errors = [...new Set(mine.map((n) => n.lastErrorCode).filter((c): c is string => c !== null))].join(',');
      lines.push([r.name, r.status, r.version, String(r.generation), short(r.artifactHash), `${serving}/${mine.length}`, errors]);
    }
    out(json, views, rows.length === 0 ? 'no plugins registered' : table(lines));
    return 0;
  });
}

type Action = 'enable' | 'disable' | 'reload' | 'remove';

async function act(action: Action, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', `${action} takes one plugin NAME (see plugin-host ${action} --help)`);
  const name = positionals[0] as string;
  const json = values.json === true;
  return withTarget(values, async (t) => {
    if (t.kind === 'server') {
      const r =
        action === 'remove'
          ? await callServer(t, 'DELETE', `/plugins/${encodeURIComponent(name)}`)
          : await callServer(t, 'POST', `/plugins/${encodeURIComponent(name)}/${action}`);
      const v = r as Record<string, unknown>;
      const err = v.last_error as { code?: string; message?: string } | null;
      const text =
        action === 'remove'
          ? `${name}: removed`
          : `${name}: ${String(v.status)}, ${String(v.state)} on the server${action === 'reload' ? ` (generation ${String(v.generation)})` : ''}${err ? `; last error ${err.code}: ${err.message}` : ''}`;
      out(json, v, text);
      return 0;
    }
    switch (action) {
      case 'enable':
      case 'disable': {
        const { row, changed } = await t.admin.setStatus(name, action === 'enable' ? 'active' : 'inactive');
        out(json, { name, status: row.status, changed }, `${name}: ${row.status}${changed ? '' : ' (unchanged)'}`);
        return 0;
      }
      case 'reload': {
        const { row, recompiled } = await t.admin.reload(name);
        out(
          json,
          { name, generation: row.generation, artifact_hash: row.artifactHash, version: row.version, recompiled },
          `${name}: generation ${row.generation}, ${recompiled ? `recompiled ${row.version} (${short(row.artifactHash)})` : 'source not here: nodes reload the published artifact'}`,
        );
        return 0;
      }
      case 'remove': {
        await t.admin.remove(name, 'cli');
        out(json, { name, removed: true }, `${name}: removed`);
        return 0;
      }
    }
  });
}

async function isolate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [name, mode] = positionals;
  if (name === undefined || mode === undefined || positionals.length !== 2 || !['inline', 'worker', 'default'].includes(mode)) {
    throw new HostError('PH_ERR_USAGE', 'isolate takes a plugin NAME and inline, worker or default (see plugin-host isolate --help)');
  }
  const wanted = mode === 'default' ? null : (mode as 'inline' | 'worker');
  const json = values.json === true;
  return withTarget(values, async (t) => {
    if (t.kind === 'server') {
      const v = (await callServer(t, 'POST', `/plugins/${encodeURIComponent(name)}/isolation`, { mode: wanted })) as Record<
        string,
        unknown
      >;
      out(json, v, `${name}: isolation ${String(v.isolation ?? 'default')}, ${String(v.state)} on the server`);
      return 0;
    }
    const { row, changed } = await t.admin.setIsolation(name, wanted);
    out(
      json,
      { name, isolation: row.isolation, changed },
      `${name}: isolation ${row.isolation ?? 'default'}${changed ? '' : ' (unchanged)'}`,
    );
    return 0;
  });
}

async function register(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { inactive: { type: 'boolean' } });
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', 'register takes one plugin DIR (see plugin-host register --help)');
  const input = positionals[0] as string;
  const status = values.inactive === true ? 'inactive' : 'active';
  const json = values.json === true;
  return withTarget(values, async (t) => {
    if (t.kind === 'server') {
      const v = (await callServer(t, 'POST', '/plugins', { path: input, status })) as Record<string, unknown>;
      out(json, v, `${String(v.name)}: registered ${String(v.version)}, ${String(v.status)}, ${String(v.state)} on the server`);
      return 0;
    }
    const row = await t.admin.register(input, { status });
    out(
      json,
      { name: row.name, version: row.version, status: row.status, artifact_hash: row.artifactHash },
      `${row.name}: registered ${row.version} (${short(row.artifactHash)}), ${row.status}`,
    );
    return 0;
  });
}

async function config(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { file: { type: 'string' } });
  const [sub, name, ...pairs] = positionals;
  const json = values.json === true;
  if ((sub !== 'get' && sub !== 'set') || name === undefined) {
    throw new HostError('PH_ERR_USAGE', 'config takes get NAME or set NAME KEY=VALUE... | --file FILE (see plugin-host config --help)');
  }
  const file = values.file as string | undefined;
  if (sub === 'get' && (pairs.length > 0 || file !== undefined)) throw new HostError('PH_ERR_USAGE', 'config get takes one plugin NAME');
  if (sub === 'set' && pairs.length > 0 === (file !== undefined)) {
    throw new HostError('PH_ERR_USAGE', 'config set takes KEY=VALUE pairs or --file FILE (one of the two)');
  }
  const whole = file === undefined ? undefined : readJsonFile(file);
  const patch = file === undefined ? configPatchOf(pairs) : undefined;
  const url = `/plugins/${encodeURIComponent(name)}/config`;
  return withTarget(values, async (t) => {
    let state: Record<string, unknown>;
    if (t.kind === 'server') {
      if (sub === 'get') state = (await callServer(t, 'GET', url)) as Record<string, unknown>;
      else state = (await callServer(t, whole === undefined ? 'PATCH' : 'PUT', url, whole ?? patch)) as Record<string, unknown>;
    } else if (sub === 'get') {
      state = { ...(await t.admin.config.get(name)) };
    } else {
      const opts = { by: 'cli' };
      const c = whole === undefined ? await t.admin.config.patch(name, patch, opts) : await t.admin.config.put(name, whole, opts);
      state = { ...c.state, changed: c.changed };
    }
    out(json, state, configText(name, sub, state));
    return 0;
  });
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw new HostError('PH_ERR_USAGE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HostError('PH_ERR_USAGE', `${file} is not JSON: ${describeError(err)}`);
  }
}

function configText(name: string, sub: string, s: Record<string, unknown>): string {
  const lines: string[] = [];
  if (sub === 'set') lines.push(`${name}: configuration ${s.changed === false ? 'unchanged' : 'stored'}, revision ${String(s.revision)}`);
  else lines.push(`${name}: revision ${String(s.revision)}${s.updated_by ? ` (by ${String(s.updated_by)}, ${String(s.updated_at)})` : ''}`);
  lines.push(`config: ${JSON.stringify(s.config, null, 2)}`);
  if (s.effective !== null && s.effective !== undefined) lines.push(`with defaults: ${JSON.stringify(s.effective, null, 2)}`);
  const errors = (s.errors as { pointer: string; message: string }[] | undefined) ?? [];
  for (const e of errors) lines.push(`invalid: ${e.pointer} ${e.message}`);
  if (sub === 'get') lines.push(`schema: ${s.schema === null ? '(none: the configuration is {})' : JSON.stringify(s.schema, null, 2)}`);
  const plugin = s.plugin as { state?: string; last_error?: { code: string; message: string } | null } | undefined;
  if (plugin?.state !== undefined)
    lines.push(
      `on the server: ${plugin.state}${plugin.last_error ? `; last error ${plugin.last_error.code}: ${plugin.last_error.message}` : ''}`,
    );
  return lines.join('\n');
}

async function create(argv: string[]): Promise<number> {
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
    import('../compiler/index.js'),
    import('../admin/index.js'),
    import('../runtime/index.js'),
    import('../logger.js'),
  ]);
  const artifacts = mkdtempSync(path.join(tmpdir(), 'plugin-host-build-'));
  try {
    const name = path.basename(dir);
    const compiler = new Compiler({ artifactsDir: artifacts, pluginsDir: process.cwd(), typecheck });
    // the same compile-and-prove path the server takes before it publishes a version
    const { artifact, metadata } = await prove(
      { compiler, runtime: new InlineRuntime(), log: createLogger('silent'), hookTimeoutMs: 5000 },
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

async function buildCommand(argv: string[]): Promise<number> {
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

async function versions(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', 'versions takes one plugin NAME (see plugin-host versions --help)');
  const name = positionals[0] as string;
  const json = values.json === true;
  return withTarget(values, async (t) => {
    const rows = (
      t.kind === 'server'
        ? await callServer(t, 'GET', `/plugins/${encodeURIComponent(name)}/versions`)
        : await t.releases.versions(name, 15_000)
    ) as Array<Record<string, unknown>>;
    const pinned =
      t.kind === 'server'
        ? ((await callServer(t, 'GET', `/plugins/${encodeURIComponent(name)}`)) as Record<string, unknown>).pinned_hash
        : (await t.repo.getByName(name))?.pinnedHash;
    const lines = [['VERSION', 'HASH', 'PUBLISHED', 'BY', 'ACTION', 'SERVED BY']];
    for (const v of rows) {
      lines.push([
        `${String(v.version)}${v.hash === pinned ? ' (pinned)' : ''}`,
        short(v.hash),
        String(v.created_at),
        String(v.published_by),
        String(v.action),
        (v.nodes as string[]).join(',') || '-',
      ]);
    }
    out(json, rows, rows.length === 0 ? `${name}: no versions recorded` : table(lines));
    return 0;
  });
}

async function rollback(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [name, which] = positionals;
  if (name === undefined || which === undefined || positionals.length !== 2) {
    throw new HostError('PH_ERR_USAGE', 'rollback takes a plugin NAME and a VERSION or HASH (see plugin-host rollback --help)');
  }
  // an artifact hash is long hex; anything else is a semver version
  const ref = /^[0-9a-f]{16,128}$/.test(which) ? { hash: which } : { version: which };
  const json = values.json === true;
  return withTarget(values, async (t) => {
    if (t.kind === 'server') {
      const v = (await callServer(t, 'POST', `/plugins/${encodeURIComponent(name)}/rollback`, ref)) as Record<string, unknown>;
      out(json, v, `${name}: pinned to ${String(v.pinned)} (${short(v.pinned_hash)}), ${String(v.state)} on the server`);
      return 0;
    }
    const row = await t.releases.rollback(name, ref, 'cli');
    out(
      json,
      { name, pinned: row.pinnedVersion, pinned_hash: row.pinnedHash },
      `${name}: pinned to ${String(row.pinnedVersion)} (${short(row.pinnedHash)}); every node serves it`,
    );
    return 0;
  });
}

/** Runs a command other than `serve`; returns the exit code. */
export async function runCommand(command: string, argv: string[]): Promise<number> {
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      const usage =
        command === 'push'
          ? (await import('./push.js')).PUSH_USAGE
          : command === 'token'
            ? (await import('./token-commands.js')).TOKEN_USAGE
            : COMMAND_USAGE[command];
      if (usage === undefined) throw new HostError('PH_ERR_USAGE', `unknown command "${command}" (try plugin-host --help)`);
      console.log(usage);
      return 0;
    }
    switch (command) {
      case 'list':
        return await list(argv);
      case 'enable':
      case 'disable':
      case 'reload':
      case 'remove':
        return await act(command, argv);
      case 'register':
        return await register(argv);
      case 'isolate':
        return await isolate(argv);
      case 'config':
        return await config(argv);
      case 'versions':
        return await versions(argv);
      case 'rollback':
        return await rollback(argv);
      case 'new':
        return await create(argv);
      case 'build':
        return await buildCommand(argv);
      case 'push':
        return await (await import('./push.js')).push(argv);
      case 'token':
        return await (await import('./token-commands.js')).token(argv);
      default:
        throw new HostError('PH_ERR_USAGE', `unknown command "${command}" (try plugin-host --help)`);
    }
  } catch (err) {
    printError(err);
    return isHostError(err, 'PH_ERR_USAGE') ? EXIT_USAGE : 1;
  }
}
