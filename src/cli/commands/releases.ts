import { HostError } from '../../errors/index.js';
import { out, parse, short, table, withControl } from './args.js';
import { onServer } from './plugins.js';

// The commands about versions: versions, rollback.

export async function versions(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (positionals.length !== 1) throw new HostError('PH_ERR_USAGE', 'versions takes one plugin NAME (see plugin-host versions --help)');
  const name = positionals[0] as string;
  return withControl(values, async (c) => {
    const { answer: rows, pinnedHash } = await c.versions(name);
    const lines = [['VERSION', 'HASH', 'PUBLISHED', 'BY', 'ACTION', 'SERVED BY']];
    for (const v of rows) {
      lines.push([
        `${String(v.version)}${v.hash === pinnedHash ? ' (pinned)' : ''}`,
        short(v.hash),
        String(v.created_at),
        String(v.published_by),
        String(v.action),
        v.nodes.join(',') || '-',
      ]);
    }
    out(values.json === true, rows, rows.length === 0 ? `${name}: no versions recorded` : table(lines));
    return 0;
  });
}

export async function rollback(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [name, which] = positionals;
  if (name === undefined || which === undefined || positionals.length !== 2) {
    throw new HostError('PH_ERR_USAGE', 'rollback takes a plugin NAME and a VERSION or HASH (see plugin-host rollback --help)');
  }
  // an artifact hash is long hex; anything else is a semver version
  const ref = /^[0-9a-f]{16,128}$/.test(which) ? { hash: which } : { version: which };
  return withControl(values, async (c) => {
    const r = await c.rollback(name, ref);
    const where = r.state === undefined ? '; every node serves it' : onServer(r);
    out(values.json === true, r.answer, `${name}: pinned to ${String(r.pinned)} (${short(r.pinnedHash)})${where}`);
    return 0;
  });
}
