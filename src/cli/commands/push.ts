import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeError, HostError } from '../../errors/index.js';
import { assertPluginName } from '../../model/index.js';
import { collect, packTarGz } from '../../uploads/index.js';
import { HttpControl } from '../control/http-control.js';
import { defaultServerUrl } from '../server-url.js';

export const PUSH_USAGE = `Usage: plugin-host push DIR [--server URL] [--token T] [--include-node-modules] [--json]

Packs the plugin directory DIR into a tar.gz and uploads it to a running server
(PUT /plugins/NAME/source, NAME being the directory's name, which must equal the plugin's metadata
name). The server compiles and trial-loads it, stores it in the database and every node serves it.
A compile error is printed with file:line:column and nothing changes (exit 1).

node_modules is left out unless --include-node-modules: a plugin that imports npm packages must be
pushed with it (the server bundles what the plugin imports at compile time, and installs nothing).

Options:
  --server URL             the server's control plane (default PLUGIN_HOST_URL, else
                           http://127.0.0.1:ADMIN_PORT, ADMIN_PORT default PORT+1 = 3001)
  --token T                ADMIN_TOKEN  the admin token, or a token holding publish:NAME
  --include-node-modules   pack DIR/node_modules too
  --json                   print the server's answer as JSON
  -h, --help               show this help`;

/** The control plane a push goes to: `--server`, else `defaultServerUrl()` (PLUGIN_HOST_URL, else this machine's ADMIN_PORT). */
function serverOf(explicit: string | undefined): string {
  return (explicit ?? defaultServerUrl()).replace(/\/+$/, '');
}

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
  const server = serverOf(values.server);
  const token = values.token ?? process.env.ADMIN_TOKEN;

  const { entries, skipped } = await collect(dir, { includeNodeModules: values['include-node-modules'] === true });
  for (const s of skipped) console.error(`plugin-host: skipped ${s} (not a regular file or directory)`);
  if (values['include-node-modules'] !== true && existsSync(path.join(dir, 'node_modules'))) {
    console.error('plugin-host: node_modules left out (--include-node-modules packs it, for a plugin importing npm packages)');
  }
  const archive = packTarGz(entries);

  // a larger time limit than other calls: the server compiles and trial-loads the plugin before it answers
  const control = new HttpControl({ url: server }, token);
  const { status, answer: body } = await control.send(
    'PUT',
    `/plugins/${name}/source`,
    { type: 'application/gzip', data: archive },
    300_000,
  );
  const size = `${(archive.length / 1024).toFixed(1)} KiB`;
  console.log(
    values.json === true
      ? JSON.stringify(body, null, 2)
      : `${name}: ${status === 201 ? 'uploaded' : 'new version uploaded'}: ${String(body.version)} (${String(body.artifact_hash ?? '').slice(0, 12)}), ${entries.length} entries, ${size}`,
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
