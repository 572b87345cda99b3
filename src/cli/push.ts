import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeError, ERROR_CODES, type ErrorCode, HostError } from '../errors/index.js';
import { assertPluginName } from '../model/index.js';
import { collect, packTarGz } from '../uploads/index.js';

export const PUSH_USAGE = `Usage: plugin-host push DIR [--server URL] [--token T] [--include-node-modules] [--json]

Packs the plugin directory DIR into a tar.gz and uploads it to a running server
(PUT /plugins/NAME/source, NAME being the directory's name, which must equal the plugin's metadata
name). The server compiles and trial-loads it, stores it in the database and every node serves it.
A compile error is printed with file:line:column and nothing changes (exit 1).

node_modules is left out unless --include-node-modules: a plugin that imports npm packages must be
pushed with it (the server bundles what the plugin imports at compile time, and installs nothing).

Options:
  --server URL             the server (default http://127.0.0.1:PORT, PORT default 3000)
  --token T                ADMIN_TOKEN  the admin token, or a token holding publish:NAME
  --include-node-modules   pack DIR/node_modules too
  --json                   print the server's answer as JSON
  -h, --help               show this help`;

function usage(message: string): HostError {
  return new HostError('PH_ERR_USAGE', `${message} (see plugin-host push --help)`);
}

/** `plugin-host push DIR`: pack and upload. Returns the exit code. */
export async function push(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: typeof OPTIONS }>>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw usage(describeError(err));
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw usage('push takes one plugin directory');
  const dir = path.resolve(positionals[0] as string);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usage(`${dir} is not a directory`);
  const name = path.basename(dir);
  assertPluginName(name);
  const server = (values.server ?? `http://127.0.0.1:${process.env.PORT ?? '3000'}`).replace(/\/+$/, '');
  const token = values.token ?? process.env.ADMIN_TOKEN;

  const { entries, skipped } = await collect(dir, { includeNodeModules: values['include-node-modules'] === true });
  for (const s of skipped) console.error(`plugin-host: skipped ${s} (not a regular file or directory)`);
  if (values['include-node-modules'] !== true && existsSync(path.join(dir, 'node_modules'))) {
    console.error('plugin-host: node_modules left out (--include-node-modules packs it, for a plugin importing npm packages)');
  }
  const archive = packTarGz(entries);

  const headers: Record<string, string> = { 'content-type': 'application/gzip' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`${server}/plugins/${name}/source`, {
      method: 'PUT',
      headers,
      body: archive,
      signal: AbortSignal.timeout(300_000),
    });
  } catch (err) {
    throw new HostError('PH_ERR_SERVER_UNREACHABLE', `server ${server} did not answer: ${describeError(err)}`, { cause: err });
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new HostError('PH_ERR_SERVER_UNREACHABLE', `server ${server} answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const code: ErrorCode = typeof body.code === 'string' && body.code in ERROR_CODES ? (body.code as ErrorCode) : 'PH_ERR_INTERNAL';
    throw new HostError(code, typeof body.detail === 'string' ? body.detail : `HTTP ${res.status}`, { details: { status: res.status } });
  }
  const size = `${(archive.length / 1024).toFixed(1)} KiB`;
  console.log(
    values.json === true
      ? JSON.stringify(body, null, 2)
      : `${name}: ${res.status === 201 ? 'uploaded' : 'new version uploaded'}: ${String(body.version)} (${String(body.artifact_hash ?? '').slice(0, 12)}), ${entries.length} entries, ${size}`,
  );
  return 0;
}

const OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  'include-node-modules': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
