import { readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { HostError } from '../errors/index.js';
import { isValidPluginName } from '../model/index.js';
import { findEntry } from './source.js';

export { ENTRY_FILES, findEntry, hashSource } from './source.js';

/** Directories that are never plugins (the original layout kept host code beside its plugins). */
const SKIP = new Set(['core', 'types', 'node_modules']);

export interface DiscoveredPlugin {
  name: string;
  /** Absolute, real path of the plugin directory. */
  dir: string;
  entry: string | undefined;
  /** Why this directory cannot become a plugin, if it cannot. */
  problem: HostError | undefined;
}

/** Proposes each directory of `pluginsDir` as a dynamic plugin. Never throws for one bad directory. */
export async function discover(pluginsDir: string): Promise<DiscoveredPlugin[]> {
  const root = await realpath(pluginsDir);
  const dirs = (await readdir(root, { withFileTypes: true })).filter(
    (e) => e.isDirectory() && !e.name.startsWith('.') && !SKIP.has(e.name),
  );
  // every directory's entry looked for at once: a start with many plugins waits for one round of lookups, not one per plugin
  const out = await Promise.all(
    dirs.map(async (e): Promise<DiscoveredPlugin> => {
      const dir = path.join(root, e.name);
      const entry = await findEntry(dir);
      let problem: HostError | undefined;
      if (!isValidPluginName(e.name)) {
        problem = new HostError(
          'PH_ERR_PLUGIN_NAME_INVALID',
          `${e.name}: directory name is not a valid plugin name (lowercase letters, digits, "-" and "_", starting with a letter or digit, at most 64)`,
        );
      } else if (entry === undefined) {
        problem = new HostError('PH_ERR_PLUGIN_NO_ENTRY', `${e.name}: no main.ts, plugin.ts or index.ts`);
      }
      return { name: e.name, dir, entry, problem };
    }),
  );
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Resolves `candidate` and returns its real path if it lies inside
 * `pluginsDir` (symlinks followed), or undefined if it leaves it or does not exist.
 */
export async function resolveInside(pluginsDir: string, candidate: string): Promise<string | undefined> {
  let root: string;
  let real: string;
  try {
    root = await realpath(pluginsDir);
    real = await realpath(path.isAbsolute(candidate) ? candidate : path.join(root, candidate));
  } catch {
    return undefined;
  }
  const rel = path.relative(root, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return real;
}

/**
 * The source directory a `plugins` row points at (`source_path`, else `path`),
 * as a real path inside `pluginsDir`; undefined when the row names none, or
 * one that does not exist here or lies outside `pluginsDir`.
 */
export async function sourceDirOf(
  row: { sourcePath: string | null; path: string | null },
  pluginsDir: string,
): Promise<string | undefined> {
  const source = row.sourcePath ?? row.path;
  return source === null ? undefined : resolveInside(pluginsDir, source);
}
