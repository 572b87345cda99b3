import { currentPlugin, pluginOfPromise } from './plugin-scope.js';

/**
 * Which plugin a fault that escaped every guard came from (an uncaught
 * exception from `process.nextTick`, a timer, an emitter with no 'error'
 * listener such as a socket; an unhandled promise rejection): the plugin
 * whose scope it was raised in (see `plugin-scope.ts`), for a rejection the
 * scope the promise was created in. Never the text of its stack, which a
 * plugin can write to name another plugin.
 */
export function attributeFault(fault: 'uncaughtException' | 'unhandledRejection', promise?: unknown): string | undefined {
  return (fault === 'unhandledRejection' ? pluginOfPromise(promise) : undefined) ?? currentPlugin();
}

/** Faults seen by this process, per plugin ('' for those no plugin's scope explains), for the metrics. */
const faultCounts = new Map<string, number>();

/** How many process-level faults each plugin raised ('' = not attributed) since the process started. */
export function processFaultCounts(): ReadonlyMap<string, number> {
  return faultCounts;
}

/** Where process-level faults are reported: the host's logger once it exists. */
export interface FaultLog {
  error(obj: Record<string, unknown>, msg: string): void;
  fatal(obj: Record<string, unknown>, msg: string): void;
}

export interface FaultHandlers {
  /** The host's logger, undefined until it exists (a JSON line goes to stderr meanwhile). */
  log(): FaultLog | undefined;
  /** A fault no plugin's scope explains (logged at fatal and counted before this is called). */
  onHostFault(reason: string): void;
}

/**
 * Keeps the server process alive through an uncaught exception or an
 * unhandled rejection: one raised in a plugin's scope is logged at level
 * error against that plugin and counted for it; one no plugin's scope
 * explains is logged at level fatal, counted as not attributed and reported
 * through `onHostFault`. Neither ends the process, and neither by itself makes
 * the node unready: a plugin could otherwise take every node's readiness with
 * one rejection raised where the host cannot see whose it is. Install once
 * per process.
 */
export function installProcessFaultHandlers(h: FaultHandlers): void {
  const report = (fault: 'uncaughtException' | 'unhandledRejection', err: unknown, promise?: unknown) => {
    try {
      const plugin = attributeFault(fault, promise);
      faultCounts.set(plugin ?? '', (faultCounts.get(plugin ?? '') ?? 0) + 1);
      const what = fault === 'uncaughtException' ? 'uncaught exception' : 'unhandled rejection';
      const message = err instanceof Error ? err.message : typeof err === 'string' ? err : String(err);
      const fields = { fault, ...(plugin === undefined ? {} : { plugin }), err };
      const l = h.log();
      if (plugin !== undefined) {
        const msg = `plugin ${plugin} raised an ${what}: ${message}; the host keeps running`;
        if (l !== undefined) l.error(fields, msg);
        else console.error(JSON.stringify({ level: 50, time: Date.now(), fault, plugin, msg }));
        return;
      }
      const msg = `${what} not attributed to a plugin: ${message}; the host keeps running`;
      if (l !== undefined) l.fatal(fields, msg);
      else console.error(JSON.stringify({ level: 60, time: Date.now(), fault, msg }));
      h.onHostFault(`${what}: ${message}`);
    } catch {
      // reporting must never turn a fault into a crash
    }
  };
  process.on('uncaughtException', (err) => report('uncaughtException', err));
  process.on('unhandledRejection', (reason, promise) => report('unhandledRejection', reason, promise));
}
