import { HostError } from './registry.js';

// The texts of errors raised in several places, written once so every surface (API, CLI, console) says the same.

/** `PH_ERR_PLUGIN_NOT_FOUND`: no plugin of that name is registered. */
export function pluginNotFound(name: string): HostError {
  return new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not registered`);
}
