// Each list is the one definition of its values; the type is derived from it, so the two cannot disagree.

/** Desired status of a plugin, as written in `plugins.status`. */
export const PLUGIN_STATUSES = ['active', 'inactive'] as const;
export type PluginStatus = (typeof PLUGIN_STATUSES)[number];

/** Where a plugin's code runs: the serving thread, a worker thread of its own, or a process of its own; from the least isolated to the most (`UPLOAD_ISOLATION` is a minimum in this order). */
export const ISOLATION_MODES = ['inline', 'worker', 'process'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/**
 * What a node does with one plugin (observed state). `serving` may carry the
 * error of a failed newer version (the old one keeps serving); `error` means
 * nothing of this plugin serves here and the last attempt failed.
 */
export const PLUGIN_STATES = ['unloaded', 'loading', 'serving', 'reloading', 'unloading', 'error'] as const;
export type PluginState = (typeof PLUGIN_STATES)[number];
