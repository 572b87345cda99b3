import { HostError } from '../errors/index.js';

/** A plugin's name: its directory name, its row's key, a path segment of the API. */
export const PLUGIN_NAME_PATTERN = /^[a-z0-9][a-z0-9-_]{0,63}$/;

export function isValidPluginName(name: unknown): name is string {
  return typeof name === 'string' && PLUGIN_NAME_PATTERN.test(name);
}

/** Throws `PH_ERR_PLUGIN_NAME_INVALID` unless `name` is a valid plugin name. */
export function assertPluginName(name: unknown): asserts name is string {
  if (!isValidPluginName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name) : String(name);
    throw new HostError('PH_ERR_PLUGIN_NAME_INVALID', `${shown} is not a valid plugin name (${PLUGIN_NAME_PATTERN})`);
  }
}
