/**
 * Which plugin an error came from, for faults that escape every guard (an
 * uncaught exception from `process.nextTick`, an unwrapped timer or an event
 * emitter; an unhandled promise rejection). Plugin bundles are evaluated with
 * their artifact path as file name (`<ARTIFACTS_DIR>/<hash>.cjs`), so a stack
 * frame of plugin code names that file; this registry maps it back to the
 * plugin. It holds strings only, never a loaded version, and is bounded.
 */

const MAX_ENTRIES = 4096;
/** Artifact file name -> plugin name, oldest first. */
const owners = new Map<string, string>();

/** Records that code evaluated under `filename` belongs to `plugin`. */
export function notePluginCode(filename: string, plugin: string): void {
  owners.delete(filename);
  owners.set(filename, plugin);
  if (owners.size > MAX_ENTRIES) {
    const oldest = owners.keys().next().value;
    if (oldest !== undefined) owners.delete(oldest);
  }
}

function stackOf(err: unknown): string | undefined {
  const s = (err as { stack?: unknown } | null | undefined)?.stack;
  return typeof s === 'string' ? s : undefined;
}

/**
 * The plugin whose code appears in the error's stack (or its causes'), the
 * frame nearest the throw first; undefined when no plugin frame is found
 * (a thrown string has no stack, a static plugin has no artifact file).
 */
export function attributeError(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && e !== undefined; depth++) {
    const stack = stackOf(e);
    if (stack !== undefined) {
      for (const line of stack.split('\n')) {
        if (!line.includes('.cjs')) continue;
        for (const [file, plugin] of owners) if (line.includes(file)) return plugin;
      }
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Where process-level faults are reported: the host's logger once it exists. */
export interface FaultLog {
  error(obj: Record<string, unknown>, msg: string): void;
  fatal(obj: Record<string, unknown>, msg: string): void;
}

export interface FaultHandlers {
  /** The host's logger, undefined until it exists (a JSON line goes to stderr meanwhile). */
  log(): FaultLog | undefined;
  /** A fault no plugin's code explains: the host's own state is unknown from here on. */
  onHostFault(reason: string): void;
}

/**
 * Keeps the server process alive through an uncaught exception or an
 * unhandled rejection that plugin code raised (its stack shows the plugin's
 * artifact): logged at level error against that plugin, instead of crashing
 * every plugin and the host with it. One that no plugin explains is the
 * host's own: logged at level fatal and reported through `onHostFault`, which
 * marks the node not ready so an orchestrator restarts it. Install once per process.
 */
export function installProcessFaultHandlers(h: FaultHandlers): void {
  const report = (fault: 'uncaughtException' | 'unhandledRejection', err: unknown) => {
    try {
      const plugin = attributeError(err);
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
      const msg = `${what} not attributed to a plugin: ${message}; the host's state is unknown, marking it not ready`;
      if (l !== undefined) l.fatal(fields, msg);
      else console.error(JSON.stringify({ level: 60, time: Date.now(), fault, msg }));
      h.onHostFault(`${what}: ${message}`);
    } catch {
      // reporting must never turn a fault into a crash
    }
  };
  process.on('uncaughtException', (err) => report('uncaughtException', err));
  process.on('unhandledRejection', (reason) => report('unhandledRejection', reason));
}
