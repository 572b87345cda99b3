import { parseArgs } from 'node:util';
import { type ConfigOverrides, loadConfig } from '../config/index.js';
import { describeError, HostError } from '../errors/index.js';
import type { Host } from '../host.js';
import { installProcessFaultHandlers } from '../runtime/index.js';

/** The running host, for process-level faults (set once it is created). */
let running: Host | undefined;

const USAGE = `plugin-host — loads, reloads and unloads HTTP plugins at runtime

Usage: plugin-host [command] [options]

Commands:
  serve            start the server (default)
  list             list the registered plugins
  enable NAME      set a plugin active (every node loads it)
  disable NAME     set a plugin inactive (every node unloads it)
  reload NAME      recompile from source and reload on every node
  remove NAME      delete a plugin's registration (every node unloads it; discovery leaves it removed)
  register DIR     register a plugin directory (brings a removed plugin back)
  isolate NAME M   run a plugin inline, in a worker, in a process, or as the default says (M: inline|worker|process|default)
  config get NAME  show a plugin's configuration, its schema and revision
  config set NAME KEY=VALUE... | --file FILE
                   validate and store a plugin's configuration (every node applies it)
  versions NAME    list the stored versions of a plugin, newest first, and the nodes serving each
  rollback NAME V  pin a plugin to a stored version V (semver or hash) on every node; reload unpins
  new NAME         scaffold a plugin directory with its test
  build DIR        compile and validate a plugin directory, printing file:line:column errors
  push DIR         pack a plugin directory and upload it to a running server (every node serves it)
  token create NAME --scope S [--expires 30d] | token list | token revoke ID
                   scoped tokens of the control plane (read, operate:NAME, publish:NAME, admin)
Run plugin-host COMMAND --help for the options of each command.

Options of serve (each overrides its environment variable):
  --port N             PORT            data plane: plugin routes, public reads (default 3000)
  --host ADDR          HOST            (default 127.0.0.1)
  --admin-port N       ADMIN_PORT      control plane: console, admin API, /events, /metrics (default PORT+1)
  --admin-host ADDR    ADMIN_HOST      (default 127.0.0.1: open it to a network on purpose)
  --database-url URL   DATABASE_URL    (unset: embedded PGlite in DATA_DIR)
  --data-dir DIR       DATA_DIR        (default ./data)
  --plugins-dir DIR    PLUGINS_DIR     (default ./plugins)
  --artifacts-dir DIR  ARTIFACTS_DIR   (default DATA_DIR/artifacts)
  --log-level LEVEL    LOG_LEVEL       (default info)
  --watch              WATCH=1         recompile plugins when their source changes
  -h, --help           show this help
Relative paths resolve against the project root in a checkout, against the working directory when installed.`;

async function serve(overrides: ConfigOverrides): Promise<void> {
  const config = loadConfig(process.env, overrides);
  // Loaded here, not at the top: the other commands start without the server's dependencies.
  const { Host } = await import('../host.js');
  const host = new Host(config);
  running = host;
  // Installed before start: a signal while waiting for the database or during the first load still shuts down cleanly.
  let signals = 0;
  const stop = (signal: string) => {
    signals++;
    if (signals > 1) {
      host.log.warn(`${signal} again: exiting immediately`);
      process.exit(1);
    }
    host.log.info(`${signal}: shutting down`);
    host.close().then(
      () => process.exit(0),
      (err: unknown) => {
        host.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await host.start();
  } catch (err) {
    if (signals > 0) return; // start aborted by the shutdown above
    await host.close().catch(() => {});
    throw err;
  }
}

export async function main(argv: string[]): Promise<void> {
  const first = argv[0];
  if (first !== undefined && !first.startsWith('-') && first !== 'serve') {
    const { runCommand } = await import('./commands/index.js');
    process.exit(await runCommand(first, argv.slice(1)));
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'admin-port': { type: 'string' },
      'admin-host': { type: 'string' },
      'database-url': { type: 'string' },
      'data-dir': { type: 'string' },
      'plugins-dir': { type: 'string' },
      'artifacts-dir': { type: 'string' },
      'log-level': { type: 'string' },
      watch: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0] ?? 'serve';
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const overrides: ConfigOverrides = {
    port: values.port,
    host: values.host,
    adminPort: values['admin-port'],
    adminHost: values['admin-host'],
    databaseUrl: values['database-url'],
    dataDir: values['data-dir'],
    pluginsDir: values['plugins-dir'],
    artifactsDir: values['artifacts-dir'],
    logLevel: values['log-level'],
    watch: values.watch,
  };
  switch (command) {
    case 'serve':
      await serve(overrides);
      return;
    default:
      throw new HostError('PH_ERR_CONFIG_INVALID', `unknown command "${command}" (try --help)`);
  }
}

// An uncaught exception or unhandled rejection from plugin code (escaped the wrapped timers and hooks) is
// logged against the plugin its stack names, and the process keeps serving; one no plugin explains marks
// the node not ready.
installProcessFaultHandlers({ log: () => running?.log, onHostFault: (reason) => running?.noteHostFault(reason) });

main(process.argv.slice(2)).catch((err: unknown) => {
  // One clear line, no stack trace, for configuration and start-up errors.
  const code = err instanceof HostError ? err.code : 'PH_ERR_INTERNAL';
  console.error(`plugin-host: ${code}: ${describeError(err)}`);
  process.exit(1);
});
