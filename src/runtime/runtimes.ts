import type { HostConfig } from '../config/index.js';
import { HostError } from '../errors/index.js';
import { ISOLATION_MODES, type IsolationMode } from '../model/index.js';
import { InlineRuntime } from './inline/index.js';
import type { PluginRuntime } from './types.js';
import { WorkerRuntime } from './worker/index.js';

/** Largest request body forwarded to a worker plugin: the host's own limit. */
export const WORKER_BODY_LIMIT = 1024 * 1024;

/**
 * The runtimes a host has, by isolation mode, and the mode a plugin gets when
 * its row names none. The manager picks one per plugin; every runtime serves
 * the same `LoadedVersion` shape.
 */
export class Runtimes {
  constructor(
    private readonly byMode: Readonly<Record<IsolationMode, PluginRuntime>>,
    readonly defaultMode: IsolationMode,
  ) {}

  get(mode: IsolationMode): PluginRuntime {
    return this.byMode[mode];
  }

  /**
   * The mode a row asks for (its `isolation`, else the default). Throws
   * `PH_ERR_DESIRED_STATE_INVALID` for an unknown mode, or a static plugin
   * (compiled into the host, so it runs in the serving thread) asked to run in a worker.
   */
  modeOf(row: { name: string; type: string; isolation: string | null }): IsolationMode {
    const mode = row.isolation ?? (row.type === 'static' ? 'inline' : this.defaultMode);
    if (!(ISOLATION_MODES as readonly string[]).includes(mode)) {
      throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${row.name}: unknown isolation "${mode}" (expected inline or worker)`);
    }
    if (row.type === 'static' && mode !== 'inline') {
      throw new HostError(
        'PH_ERR_DESIRED_STATE_INVALID',
        `${row.name}: a static plugin runs in the serving thread only (isolation inline)`,
      );
    }
    return mode as IsolationMode;
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.byMode).map((r) => r.close()));
  }
}

/** The host's runtimes as its configuration sets them: inline, and worker with its limits. */
export function runtimesFor(c: HostConfig, inline: PluginRuntime = new InlineRuntime()): Runtimes {
  const worker = new WorkerRuntime({
    memoryMb: c.pluginMemoryMb,
    requestTimeoutMs: c.pluginRequestTimeoutMs,
    stallTimeoutMs: c.pluginStallTimeoutMs,
    crashLimit: c.pluginCrashLimit,
    crashWindowMs: c.pluginCrashWindowMs,
    bodyLimit: WORKER_BODY_LIMIT,
    logLevel: c.logLevel,
  });
  return new Runtimes({ inline, worker }, c.pluginIsolation);
}
