import { HostError } from '../../errors/index.js';
import { configPatchOf } from '../config-args.js';
import type { ConfigOp } from '../control/control.js';
import { out, parse, readJsonFile, withControl } from './args.js';

// The command about a plugin's configuration: config get, config set.

export async function config(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { file: { type: 'string' } });
  const [sub, name, ...pairs] = positionals;
  if ((sub !== 'get' && sub !== 'set') || name === undefined) {
    throw new HostError('PH_ERR_USAGE', 'config takes get NAME or set NAME KEY=VALUE... | --file FILE (see plugin-host config --help)');
  }
  const file = values.file as string | undefined;
  if (sub === 'get' && (pairs.length > 0 || file !== undefined)) throw new HostError('PH_ERR_USAGE', 'config get takes one plugin NAME');
  if (sub === 'set' && pairs.length > 0 === (file !== undefined)) {
    throw new HostError('PH_ERR_USAGE', 'config set takes KEY=VALUE pairs or --file FILE (one of the two)');
  }
  const op: ConfigOp =
    sub === 'get'
      ? { kind: 'get' }
      : file === undefined
        ? { kind: 'patch', patch: configPatchOf(pairs) }
        : { kind: 'put', values: readJsonFile(file) };
  return withControl(values, async (c) => {
    const state = await c.config(name, op);
    out(values.json === true, state, configText(name, sub, state));
    return 0;
  });
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
