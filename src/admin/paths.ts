import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { resolveInside } from '../discovery/index.js';
import { HostError } from '../errors/index.js';
import { pathExists } from '../fs-exists.js';

/**
 * Resolves a directory given to `POST /plugins` (a name relative to
 * `PLUGINS_DIR`, or an absolute path) and returns its real path. Only a
 * directory directly inside `PLUGINS_DIR` is accepted: `..` segments, absolute
 * paths elsewhere, nested directories and symlinks pointing out are refused.
 */
export async function resolvePluginDirectory(pluginsDir: string, input: string): Promise<string> {
  if (input.includes('\0')) throw new HostError('PH_ERR_PLUGIN_PATH_OUTSIDE', 'path contains a NUL byte');
  const shown = JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input);
  const root = await realpath(pluginsDir);
  const given = path.resolve(pluginsDir);
  const candidate = path.isAbsolute(input) ? path.resolve(input) : path.resolve(root, input);
  // Lexical check first, so a path that leaves PLUGINS_DIR is refused whether or not it exists.
  const childOf = (base: string) => path.dirname(candidate) === base;
  if (!childOf(root) && !childOf(given)) {
    throw new HostError('PH_ERR_PLUGIN_PATH_OUTSIDE', `path ${shown} is not a directory directly inside the plugins directory`);
  }
  if (!(await pathExists(candidate))) {
    throw new HostError('PH_ERR_PLUGIN_NO_ENTRY', `path ${shown} does not exist in the plugins directory`);
  }
  const real = await resolveInside(pluginsDir, candidate);
  if (real === undefined || path.dirname(real) !== root) {
    // exists and is lexically inside, but its real path is not: a symlink out
    throw new HostError('PH_ERR_PLUGIN_PATH_OUTSIDE', `path ${shown} resolves (through a symlink) outside the plugins directory`);
  }
  if (!(await lstat(real)).isDirectory()) throw new HostError('PH_ERR_PLUGIN_NO_ENTRY', `path ${shown} is not a directory`);
  return real;
}
