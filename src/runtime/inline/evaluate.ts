import { createRequire, isBuiltin } from 'node:module';
import vm from 'node:vm';
import * as fastifyModule from 'fastify';
import { describeError, HostError } from '../../errors/index.js';
import * as sdk from '../../sdk/index.js';
import { forbiddenModule, forbiddenReason } from '../confine/modules.js';
import { pluginGlobal, pluginTimersModule, pluginTimersPromises } from './timer-modules.js';

const hostRequire = createRequire(import.meta.url);

/** Modules the host hands to plugin bundles; everything else was bundled by the compiler. */
const PROVIDED: Record<string, unknown> = {
  fastify: fastifyModule,
  'plugin-host/sdk': sdk,
};

/**
 * Timers created by plugin code go through these wrappers: a throw inside a
 * plugin's callback, or a rejection of the promise an async callback returns,
 * is caught and reported against that plugin instead of crashing the host (or
 * becoming an unattributed unhandled rejection), and every pending timer is cleared when the version
 * unloads, so nothing keeps an unloaded version's closures alive.
 */
export class PluginTimers {
  private readonly timeouts = new Set<NodeJS.Timeout>();
  private readonly intervals = new Set<NodeJS.Timeout>();
  private readonly immediates = new Set<NodeJS.Immediate>();
  private disposed = false;
  /** Aborted on dispose: what `node:timers/promises` timers of the plugin are bound to. */
  private readonly unload = new AbortController();

  constructor(private readonly onError: (err: unknown) => void) {}

  /** The unload signal (see `pluginTimersPromises`). */
  get signal(): AbortSignal {
    return this.unload.signal;
  }

  private guard<A extends unknown[]>(fn: (...args: A) => unknown): (...args: A) => void {
    return (...args: A) => {
      try {
        const r = fn(...args);
        if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') {
          Promise.resolve(r).catch((err: unknown) => this.onError(err));
        }
      } catch (err) {
        this.onError(err);
      }
    };
  }

  readonly globals = {
    setTimeout: (fn: (...a: unknown[]) => unknown, ms?: number, ...args: unknown[]) => {
      if (this.disposed) return undefined;
      const t: NodeJS.Timeout = setTimeout(
        this.guard((...a: unknown[]) => {
          this.timeouts.delete(t);
          return fn(...a);
        }),
        ms,
        ...args,
      );
      this.timeouts.add(t);
      return t;
    },
    clearTimeout: (t: NodeJS.Timeout | undefined) => {
      if (t === undefined) return;
      this.timeouts.delete(t);
      clearTimeout(t);
    },
    setInterval: (fn: (...a: unknown[]) => unknown, ms?: number, ...args: unknown[]) => {
      if (this.disposed) return undefined;
      const t = setInterval(this.guard(fn), ms, ...args);
      this.intervals.add(t);
      return t;
    },
    clearInterval: (t: NodeJS.Timeout | undefined) => {
      if (t === undefined) return;
      this.intervals.delete(t);
      clearInterval(t);
    },
    setImmediate: (fn: (...a: unknown[]) => unknown, ...args: unknown[]) => {
      if (this.disposed) return undefined;
      const t: NodeJS.Immediate = setImmediate(
        this.guard((...a: unknown[]) => {
          this.immediates.delete(t);
          return fn(...a);
        }),
        ...args,
      );
      this.immediates.add(t);
      return t;
    },
    clearImmediate: (t: NodeJS.Immediate | undefined) => {
      if (t === undefined) return;
      this.immediates.delete(t);
      clearImmediate(t);
    },
    // Node raises a throw from a microtask after leaving the scope it ran in: caught here, it stays the plugin's
    queueMicrotask: (fn: () => unknown) => {
      if (this.disposed) return;
      queueMicrotask(this.guard(fn));
    },
  };

  dispose(): void {
    this.disposed = true;
    this.unload.abort(new Error('plugin version unloaded'));
    for (const t of this.timeouts) clearTimeout(t);
    for (const t of this.intervals) clearInterval(t);
    for (const t of this.immediates) clearImmediate(t);
    this.timeouts.clear();
    this.intervals.clear();
    this.immediates.clear();
  }
}

const TIMER_MODULES = new Set(['timers', 'node:timers', 'timers/promises', 'node:timers/promises']);

const TIMER_NAMES = [
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
  'setImmediate',
  'clearImmediate',
  'queueMicrotask',
] as const;

/**
 * Evaluates a CommonJS bundle in a fresh function scope. Unlike ESM `import()`
 * with a cache-busting query, nothing global keeps a reference to the module,
 * so an unloaded version is garbage-collected. A `confined` bundle (worker,
 * process) is refused the modules that reach outside its runtime.
 */
export function evaluateBundle(
  name: string,
  bundle: string,
  filename: string,
  timers: PluginTimers,
  confined = false,
): Record<string, unknown> {
  const moduleShim: { exports: Record<string, unknown> } = { exports: {} };
  // the timer modules a plugin requires are its own, tracked like its bare timers; made once per version
  let timerModules: Record<string, unknown> | undefined;
  const modulesOfTimers = () => {
    if (timerModules === undefined) {
      const t = pluginTimersModule(timers.globals);
      const p = pluginTimersPromises(timers.signal);
      timerModules = { timers: t, 'node:timers': t, 'timers/promises': p, 'node:timers/promises': p };
    }
    return timerModules;
  };
  const requireShim = (id: string): unknown => {
    const provided = PROVIDED[id];
    if (provided !== undefined) return provided;
    if (confined) {
      const why = forbiddenReason(id);
      if (why !== undefined) throw forbiddenModule(name, id, why);
    }
    if (TIMER_MODULES.has(id)) return modulesOfTimers()[id];
    if (isBuiltin(id)) return hostRequire(id);
    throw new HostError('PH_ERR_COMPILE_RESOLVE', `${name}: cannot require "${id}" at run time (not bundled, not provided by the host)`);
  };
  let fn: (...args: unknown[]) => unknown;
  try {
    fn = vm.compileFunction(bundle, ['exports', 'require', 'module', '__filename', '__dirname', 'globalThis', 'global', ...TIMER_NAMES], {
      filename,
    }) as (...args: unknown[]) => unknown;
  } catch (err) {
    throw new HostError('PH_ERR_LOAD_EVALUATE', `${name}: artifact does not parse: ${describeError(err)}`, { cause: err });
  }
  try {
    const g = pluginGlobal(timers.globals);
    fn(moduleShim.exports, requireShim, moduleShim, filename, '', g, g, ...TIMER_NAMES.map((t) => timers.globals[t]));
  } catch (err) {
    if (err instanceof HostError) throw err;
    throw new HostError('PH_ERR_LOAD_EVALUATE', `${name}: module threw while evaluating: ${describeError(err)}`, { cause: err });
  }
  return moduleShim.exports;
}
