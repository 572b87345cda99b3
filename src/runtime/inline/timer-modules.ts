import * as timersModule from 'node:timers';
import * as timersPromises from 'node:timers/promises';

/** The timer functions a plugin's `PluginTimers` hands out (guarded, tracked, cleared on unload). */
export type TrackedTimers = Record<
  'setTimeout' | 'clearTimeout' | 'setInterval' | 'clearInterval' | 'setImmediate' | 'clearImmediate' | 'queueMicrotask',
  unknown
>;

const TIMER_KEYS = new Set([
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
  'setImmediate',
  'clearImmediate',
  'queueMicrotask',
]);

/**
 * What a plugin bundle gets for `globalThis` and `global`: the real global
 * object, except that its timer functions are the plugin's tracked ones, so
 * `globalThis.setInterval(...)` is cleared on unload as a bare
 * `setInterval(...)` is. Everything else reads and writes through to the
 * global object (read without the proxy as receiver: some globals are
 * getters that refuse another `this`).
 */
export function pluginGlobal(tracked: TrackedTimers): typeof globalThis {
  return new Proxy(globalThis, {
    get(target, prop) {
      if (typeof prop === 'string' && TIMER_KEYS.has(prop)) return tracked[prop as keyof TrackedTimers];
      return Reflect.get(target, prop);
    },
  });
}

/** `node:timers` for a plugin: the module with its timer functions replaced by the tracked ones. */
export function pluginTimersModule(tracked: TrackedTimers): typeof timersModule {
  return Object.freeze({ ...timersModule, ...tracked }) as unknown as typeof timersModule;
}

type WithSignal = { signal?: AbortSignal } & Record<string, unknown>;

/** `options` with `signal` also aborted when `unload` is. */
function bound(options: unknown, unload: AbortSignal): WithSignal {
  const o = (options !== null && typeof options === 'object' ? options : {}) as WithSignal;
  return { ...o, signal: o.signal === undefined ? unload : AbortSignal.any([o.signal, unload]) };
}

/**
 * `node:timers/promises` for a plugin: every timer it starts is bound to the
 * version's unload signal, so unloading clears it (the pending promise or
 * iterator rejects with an `AbortError`, as with any aborted timer) instead of
 * keeping the version's closures alive until it fires.
 */
export function pluginTimersPromises(unload: AbortSignal): typeof timersPromises {
  const scheduler = timersPromises.scheduler as { wait(ms: number, o?: unknown): Promise<void>; yield(): Promise<void> };
  return Object.freeze({
    ...timersPromises,
    setTimeout: (ms?: number, value?: unknown, options?: unknown) => timersPromises.setTimeout(ms, value, bound(options, unload)),
    setImmediate: (value?: unknown, options?: unknown) => timersPromises.setImmediate(value, bound(options, unload)),
    setInterval: (ms?: number, value?: unknown, options?: unknown) => timersPromises.setInterval(ms, value, bound(options, unload)),
    scheduler: Object.freeze({
      wait: (ms: number, options?: unknown) => scheduler.wait(ms, bound(options, unload)),
      yield: () => scheduler.yield(),
    }),
  }) as unknown as typeof timersPromises;
}
