import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which plugin the code running now belongs to, carried by Node's async
 * context: the host enters a plugin's scope when it evaluates the plugin's
 * bundle, calls one of its hooks or hands it a request, and every callback
 * that code schedules (a timer, `process.nextTick`, a promise, a socket's
 * events) runs in the same scope. A fault that escapes every guard is
 * attributed from the scope it was raised in, which plugin code cannot
 * forge, rather than from the text of its stack, which it can.
 */
const scope = new AsyncLocalStorage<string>();

/**
 * The symbol under which Node (before its AsyncContextFrame implementation)
 * keeps a store on each async resource, promises included: read to find the
 * scope a rejected promise was created in, as the unhandled-rejection event
 * is not raised in that scope.
 */
const resourceStore = (scope as unknown as { kResourceStore?: unknown }).kResourceStore;

/**
 * Whether scopes are entered (`PLUGIN_FAULT_SCOPE`). On Node 20 the first
 * scope entered turns on a hook for every promise the process creates, which
 * costs a plugin request about half again its CPU time (bench/cpu-per-request);
 * off, nothing is attributed and every escaped fault is logged as the host's.
 */
let enabled = true;

/** Turns scopes on or off for the process (set once at start, before any plugin loads). */
export function usePluginScopes(on: boolean): void {
  enabled = on;
}

/** Calls `fn(...args)` in `plugin`'s scope. */
export function inPluginScope<A extends unknown[], R>(plugin: string, fn: (...args: A) => R, ...args: A): R {
  return enabled ? scope.run(plugin, fn, ...args) : fn(...args);
}

/** The plugin whose scope the current code runs in, if any. */
export function currentPlugin(): string | undefined {
  return scope.getStore();
}

/** The plugin in whose scope `promise` was created, if Node keeps it where this can read it. */
export function pluginOfPromise(promise: unknown): string | undefined {
  if (typeof resourceStore !== 'symbol' || promise === null || typeof promise !== 'object') return undefined;
  const v = (promise as Record<symbol, unknown>)[resourceStore];
  return typeof v === 'string' ? v : undefined;
}
