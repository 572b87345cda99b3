import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathBase } from '../../config/index.js';
import { describeError, HostError } from '../../errors/index.js';
import type { TokenInfo } from '../../tokens/store.js';
import { HttpControl } from '../control/http-control.js';
import { defaultServerUrl } from '../server-url.js';
import { table } from './args.js';

export const TOKEN_USAGE = `Usage: plugin-host token create NAME --scope SCOPE [--scope SCOPE...] [--expires 30d|12h|DATE] [options]
       plugin-host token list [options]
       plugin-host token revoke ID [options]

Scoped tokens for the control plane. create prints the new token's secret once (the server keeps
only its SHA-256): give it to whoever needs it, as --token or ADMIN_TOKEN of their commands. Scopes:
  read            every read of the control plane (configurations, the audit trail)
  operate:NAME    enable, disable, toggle, reload, isolation and configuration of NAME
  publish:NAME    upload (push), versions, rollback, rollouts and removal of NAME
  admin           everything, tokens included
NAME may be * (every plugin). list shows every token without its secret; revoke ID refuses the
token on every node within seconds. Each needs an admin token (ADMIN_TOKEN or a token holding admin).

Options:
  --server URL         the control plane to ask (default: the server holding DATA_DIR, else PLUGIN_HOST_URL,
                       else http://127.0.0.1:ADMIN_PORT)
  --token TOKEN        ADMIN_TOKEN   a token holding admin
  --data-dir DIR       DATA_DIR      (to find the running server of the embedded database)
  --json               print JSON instead of text
  -h, --help           show this help`;

const OPTIONS = {
  scope: { type: 'string', multiple: true },
  expires: { type: 'string' },
  server: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usage(message: string): HostError {
  return new HostError('PH_ERR_USAGE', `${message} (see plugin-host token --help)`);
}

/** `30d`, `12h`, `45m` from now, or an ISO 8601 date. */
export function expiryOf(raw: string, now = Date.now()): Date {
  const m = /^(\d{1,6})([dhm])$/.exec(raw.trim());
  if (m !== null) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
    return new Date(now + Number(m[1]) * unit);
  }
  const d = new Date(raw);
  if (Number.isNaN(d.getTime())) throw usage(`--expires takes 30d, 12h, 45m or an ISO 8601 date, got "${raw}"`);
  return d;
}

/** The control plane the commands talk to: --server, else the one of the server holding the embedded database, else `defaultServerUrl()`. */
async function serverUrl(values: { server?: string | undefined; 'data-dir'?: string | undefined }): Promise<string> {
  if (values.server !== undefined) return values.server.replace(/\/+$/, '');
  const dataDir = path.resolve(pathBase(), values['data-dir'] ?? process.env.DATA_DIR ?? 'data');
  const { readServerInfo } = await import('../../admin/index.js');
  return readServerInfo(dataDir)?.url ?? defaultServerUrl();
}

async function call(server: string, token: string | undefined, method: string, url: string, body?: unknown): Promise<unknown> {
  const data = body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) };
  return (await new HttpControl({ url: server }, token).send(method, url, data, 30_000)).answer;
}

function tokenTable(tokens: TokenInfo[]): string {
  const rows = [['ID', 'NAME', 'SCOPES', 'EXPIRES', 'LAST USED', 'STATE']];
  const now = Date.now();
  for (const t of tokens) {
    const state = t.revoked_at !== null ? 'revoked' : t.expires_at !== null && Date.parse(t.expires_at) <= now ? 'expired' : 'active';
    rows.push([t.id, t.name, t.scopes.join(','), t.expires_at ?? '-', t.last_used_at ?? '-', state]);
  }
  return table(rows);
}

/** `plugin-host token create|list|revoke`: returns the exit code. */
export async function token(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: typeof OPTIONS }>>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw usage(describeError(err));
  }
  const { values, positionals } = parsed;
  const [sub, arg, ...rest] = positionals;
  if (rest.length > 0) throw usage(`unexpected ${rest.join(' ')}`);
  const secret = values.token ?? process.env.ADMIN_TOKEN;
  const json = values.json === true;
  switch (sub) {
    case 'create': {
      if (arg === undefined) throw usage('token create takes a NAME');
      const scopes = (values.scope ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '');
      if (scopes.length === 0) throw usage('token create needs at least one --scope');
      const expiresAt = values.expires === undefined ? undefined : expiryOf(values.expires).toISOString();
      const body = { name: arg, scopes, ...(expiresAt === undefined ? {} : { expiresAt }) };
      const created = (await call(await serverUrl(values), secret, 'POST', '/tokens', body)) as { id: string; token: string };
      if (json) console.log(JSON.stringify(created, null, 2));
      else {
        console.log(created.token);
        console.error(`plugin-host: token ${created.id} "${arg}" created (${scopes.join(', ')}); its secret is shown this once`);
      }
      return 0;
    }
    case 'list': {
      if (arg !== undefined) throw usage('token list takes no arguments');
      const tokens = (await call(await serverUrl(values), secret, 'GET', '/tokens')) as TokenInfo[];
      console.log(json ? JSON.stringify(tokens, null, 2) : tokenTable(tokens));
      return 0;
    }
    case 'revoke': {
      if (arg === undefined) throw usage('token revoke takes a token ID (see plugin-host token list)');
      const revoked = (await call(await serverUrl(values), secret, 'DELETE', `/tokens/${encodeURIComponent(arg)}`)) as TokenInfo;
      console.log(json ? JSON.stringify(revoked, null, 2) : `${revoked.id} "${revoked.name}" revoked at ${revoked.revoked_at}`);
      return 0;
    }
    default:
      throw usage(sub === undefined ? 'token takes create, list or revoke' : `unknown token command "${sub}"`);
  }
}
