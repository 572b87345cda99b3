import type { PluginMetadata } from '../../sdk/index.js';
import type { LoadedVersion, LoadRequest, PluginRuntime } from '../types.js';
import { loadPlugin, trialLoad } from './load.js';

export { loadPlugin, trialLoad } from './load.js';
export { LoadedPlugin } from './loaded-plugin.js';

/**
 * Plugins evaluated in the serving thread (`vm.compileFunction` with a
 * `require` shim) and served straight by their own Fastify instance: the
 * fastest runtime, for trusted code that shares the host's process.
 */
export class InlineRuntime implements PluginRuntime {
  readonly kind = 'inline';

  load(req: LoadRequest): Promise<LoadedVersion> {
    return loadPlugin(req);
  }

  async trial(req: LoadRequest): Promise<PluginMetadata> {
    return trialLoad(req);
  }

  async close(): Promise<void> {}
}
