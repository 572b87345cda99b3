/** Desired status of a plugin, as written in `plugins.status`. */
export type PluginStatus = 'active' | 'inactive';
export const PLUGIN_STATUSES: readonly PluginStatus[] = ['active', 'inactive'];

/** Where a plugin's code runs: the serving thread, a worker thread of its own, or a process of its own. */
export type IsolationMode = 'inline' | 'worker' | 'process';
/** From the least isolated to the most (`UPLOAD_ISOLATION` is a minimum in this order). */
export const ISOLATION_MODES: readonly IsolationMode[] = ['inline', 'worker', 'process'];

/**
 * What a node does with one plugin (observed state). `serving` may carry the
 * error of a failed newer version (the old one keeps serving); `error` means
 * nothing of this plugin serves here and the last attempt failed.
 */
export type PluginState = 'unloaded' | 'loading' | 'serving' | 'reloading' | 'unloading' | 'error';
export const PLUGIN_STATES: readonly PluginState[] = ['unloaded', 'loading', 'serving', 'reloading', 'unloading', 'error'];
