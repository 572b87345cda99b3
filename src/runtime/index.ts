/**
 * How plugin code runs. The manager is handed a `PluginRuntime` and sees only
 * `LoadedVersion`s; `InlineRuntime` evaluates versions in the serving thread.
 */
export { attributeFault, type FaultLog, installProcessFaultHandlers, processFaultCounts } from './attribution.js';
export { callHook, type HookName } from './hooks.js';
export { InflightVersion } from './inflight.js';
export { InlineRuntime, LoadedPlugin, loadPlugin, trialLoad } from './inline/index.js';
export { validateMetadata } from './metadata.js';
export { usePluginScopes } from './plugin-scope.js';
export { Runtimes, runtimesFor } from './runtimes.js';
export type { LoadedVersion, LoadRequest, PluginCode, PluginRuntime, RegisteredRoute, RequestHandler } from './types.js';
export { LATENCY_BUCKETS_MS, SupervisedVersion, type WorkerLimits, WorkerRuntime } from './worker/index.js';
