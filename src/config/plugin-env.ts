/**
 * What plugin code finds in `process.env`. The host reads its environment
 * once at start (its settings, and the copy plugin secret references resolve
 * from); after that, every variable not on the allow-list is removed from
 * `process.env`, so a variable one plugin's configuration names (`$env`) is
 * not readable by every other plugin, and no credential given to the process
 * for some other program stays in reach of plugin code.
 */

/**
 * The default allow-list: what ordinary libraries read (locale, time zone,
 * temporary directory, `NODE_ENV`) and nothing that is usually a secret.
 */
export const DEFAULT_PLUGIN_ENV_ALLOW: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  'NODE_ENV',
  'TMPDIR',
  'TMP',
  'TEMP',
];

const ENTRY = /^[A-Za-z_][A-Za-z0-9_]*\*?$/;

/**
 * Parses `PLUGIN_ENV_ALLOW`: names separated by commas or spaces, each an
 * exact variable name or a prefix ending in `*` (`LC_*`). Returns the entries
 * that are not valid names as `invalid`.
 */
export function parseEnvAllowList(text: string): { allow: string[]; invalid: string[] } {
  const entries = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return { allow: entries.filter((e) => ENTRY.test(e)), invalid: entries.filter((e) => !ENTRY.test(e)) };
}

/** Whether variable `name` is on `allow`. */
export function envAllowed(name: string, allow: readonly string[]): boolean {
  for (const a of allow) {
    if (a.endsWith('*') ? name.startsWith(a.slice(0, -1)) : name === a) return true;
  }
  return false;
}

/**
 * Removes from `env` (in place: `process.env` is what plugin code reads) every
 * variable `allow` does not name; returns the names removed, for the start-up
 * log line (names only, never values).
 */
export function reduceEnvironment(env: NodeJS.ProcessEnv, allow: readonly string[]): string[] {
  const removed: string[] = [];
  for (const name of Object.keys(env)) {
    if (envAllowed(name, allow)) continue;
    delete env[name];
    removed.push(name);
  }
  return removed;
}
