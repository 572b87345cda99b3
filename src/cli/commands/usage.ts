// The help text of each data command, printed by `plugin-host COMMAND --help`.

export const CONNECTION_HELP = `Where it acts:
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
  isolate: `Usage: plugin-host isolate NAME inline|worker|process|default [options]

Sets where the plugin runs: inline (the serving thread), worker (a worker thread of its own: a hang,
process.exit() or heap exhaustion ends only that worker), process (a process of its own under Node's
permission model, another user when the host is root), or default (PLUGIN_ISOLATION). Every node
reloads it blue/green into that runtime; UPLOAD_ISOLATION keeps an uploaded plugin at least that isolated.

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
