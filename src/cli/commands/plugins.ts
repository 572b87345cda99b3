import { HostError } from '../../errors/index.js';
import { ISOLATION_MODES, type IsolationMode, PLUGIN_STATUSES, type PluginStatus } from '../../model/index.js';
import type { PluginChange } from '../control/control.js';
import { out, parse, short, table, withControl } from './args.js';

// The commands about plugins themselves: list, enable, disable, reload, remove, isolate, register.

export async function list(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { status: { type: 'string' } });
  if (positionals.length > 0) throw new HostError('PH_ERR_USAGE', `list takes no arguments (got ${positionals.join(' ')})`);
  const status = values.status as string | undefined;
  if (status !== undefined && !PLUGIN_STATUSES.includes(status as PluginStatus)) {
    throw new HostError('PH_ERR_USAGE', `--status must be active or inactive, got "${status}"`);
  }
  return withControl(values, async (c) => {
    const { answer, plugins } = await c.list(status as PluginStatus | undefined);
    // through a server: its own state of each plugin; on the database: what the live nodes report
    const lines =
      c.where === 'server'
        ? [['NAME', 'STATUS', 'STATE', 'VERSION', 'GEN', 'HASH', 'LAST ERROR']]
        : [['NAME', 'STATUS', 'VERSION', 'GEN', 'HASH', 'SERVING NODES', 'ERRORS']];
    for (const p of plugins) {
      const gen = String(p.generation ?? '-');
      if (c.where === 'server') {
        lines.push([
          p.name,
          p.status ?? '(unregistered)',
          String(p.state),
          p.version ?? '-',
          gen,
          short(p.artifactHash),
          p.lastErrorCode ?? '',
        ]);
      } else {
        const n = p.nodes ?? { serving: 0, total: 0, errors: [] };
        lines.push([
          p.name,
          String(p.status),
          String(p.version),
          gen,
          short(p.artifactHash),
          `${n.serving}/${n.total}`,
          n.errors.join(','),
        ]);
      }
    }
    out(values.json === true, answer, plugins.length === 0 ? 'no plugins registered' : table(lines));
    return 0;
  });
}

type Action = 'enable' | 'disable' | 'reload' | 'remove';

export async function act(action: Action, argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', `${action} takes one plugin NAME (see plugin-host ${action} --help)`);
  const name = positionals[0] as string;
  return withControl(values, async (c) => {
    let r: PluginChange;
    let text: string;
    if (action === 'remove') {
      r = await c.remove(name);
      text = `${name}: removed`;
    } else if (action === 'reload') {
      r = await c.reload(name);
      text =
        r.state !== undefined
          ? `${name}: ${String(r.status)}${onServer(r)} (generation ${String(r.generation)})${lastError(r)}`
          : `${name}: generation ${String(r.generation)}, ${r.recompiled ? `recompiled ${String(r.version)} (${short(r.artifactHash)})` : 'source not here: nodes reload the published artifact'}`;
    } else {
      r = await c.setStatus(name, action === 'enable' ? 'active' : 'inactive');
      text = `${name}: ${String(r.status)}${onServer(r)}${unchanged(r)}${lastError(r)}`;
    }
    out(values.json === true, r.answer, text);
    return 0;
  });
}

export async function isolate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [name, mode] = positionals;
  if (name === undefined || mode === undefined || positionals.length !== 2 || ![...ISOLATION_MODES, 'default'].includes(mode)) {
    throw new HostError(
      'PH_ERR_USAGE',
      `isolate takes a plugin NAME and ${ISOLATION_MODES.join(', ')} or default (see plugin-host isolate --help)`,
    );
  }
  const wanted = mode === 'default' ? null : (mode as IsolationMode);
  return withControl(values, async (c) => {
    const r = await c.setIsolation(name, wanted);
    out(values.json === true, r.answer, `${name}: isolation ${r.isolation ?? 'default'}${onServer(r)}${unchanged(r)}`);
    return 0;
  });
}

export async function register(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { inactive: { type: 'boolean' } });
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', 'register takes one plugin DIR (see plugin-host register --help)');
  const status = values.inactive === true ? 'inactive' : 'active';
  return withControl(values, async (c) => {
    const r = await c.register(positionals[0] as string, status);
    const text =
      r.state !== undefined
        ? `${r.name}: registered ${String(r.version)}, ${String(r.status)}${onServer(r)}`
        : `${r.name}: registered ${String(r.version)} (${short(r.artifactHash)}), ${String(r.status)}`;
    out(values.json === true, r.answer, text);
    return 0;
  });
}

/** `, STATE on the server` when a server answered (it says what it does with the plugin now). */
export function onServer(r: PluginChange): string {
  return r.state === undefined ? '' : `, ${r.state} on the server`;
}

function unchanged(r: PluginChange): string {
  return r.changed === false ? ' (unchanged)' : '';
}

function lastError(r: PluginChange): string {
  return r.lastError ? `; last error ${r.lastError.code}: ${r.lastError.message}` : '';
}
