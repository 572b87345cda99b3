import type { HostConfig } from '../config/index.js';
import { HostError } from '../errors/index.js';
import { ISOLATION_MODES, type IsolationMode } from '../model/index.js';
import { InlineRuntime } from './inline/index.js';
import { identityFor, ProcessRuntime } from './process/index.js';
import { WorkerStats } from './supervised/stats.js';
import type { PluginRuntime } from './types.js';
import { WorkerRuntime } from './worker/index.js';

/** Largest request body forwarded to a worker or process plugin: the host's own limit. */
export const WORKER_BODY_LIMIT = 1024 * 1024;

/** The rows `modeOf` reads: `sourceArchive` set means the plugin arrived over the upload API or `push`. */
export interface ModeRow {
  name: string;
  type: string;
  isolation: string | null;
  sourceArchive?: string | null;
}

/**
 * The runtimes a host has, by isolation mode, and the mode a plugin gets when
 * its row names none. The manager picks one per plugin; every runtime serves
 * the same `LoadedVersion` shape.
 */
export class Runtimes {
  constructor(
    private readonly byMode: Readonly<Record<'inline' | 'worker', PluginRuntime>> & Readonly<Partial<Record<IsolationMode, PluginRuntime>>>,
    readonly defaultMode: IsolationMode,
    /** `UPLOAD_ISOLATION`: an uploaded plugin runs at least this isolated, whatever its row or the default says. */
    readonly uploadMinimum: IsolationMode | undefined = undefined,
  ) {}

  get(mode: IsolationMode): PluginRuntime {
    const r = this.byMode[mode];
    if (r === undefined) throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `isolation ${mode} is not available on this host`);
    return r;
  }

  /**
   * The mode a row asks for (its `isolation`, else the default), raised to
   * `uploadMinimum` for an uploaded plugin. Throws `PH_ERR_DESIRED_STATE_INVALID`
   * for an unknown mode, or a static plugin (compiled into the host, so it runs
   * in the serving thread) asked to run elsewhere.
   */
  modeOf(row: ModeRow): IsolationMode {
    const asked = row.isolation ?? (row.type === 'static' ? 'inline' : this.defaultMode);
    if (!(ISOLATION_MODES as readonly string[]).includes(asked)) {
      throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${row.name}: unknown isolation "${asked}" (expected inline, worker or process)`);
    }
    if (row.type === 'static' && asked !== 'inline') {
      throw new HostError(
        'PH_ERR_DESIRED_STATE_INVALID',
        `${row.name}: a static plugin runs in the serving thread only (isolation inline)`,
      );
    }
    const mode = asked as IsolationMode;
    const min = this.uploadMinimum;
    const uploaded = row.sourceArchive !== undefined && row.sourceArchive !== null;
    if (uploaded && min !== undefined && ISOLATION_MODES.indexOf(mode) < ISOLATION_MODES.indexOf(min)) return min;
    return mode;
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.byMode).map((r) => r?.close()));
  }
}

/** The host's runtimes as its configuration sets them: inline, worker and process, the last two with their limits. */
export function runtimesFor(c: HostConfig, inline: PluginRuntime = new InlineRuntime()): Runtimes {
  const limits = {
    memoryMb: c.pluginMemoryMb,
    requestTimeoutMs: c.pluginRequestTimeoutMs,
    stallTimeoutMs: c.pluginStallTimeoutMs,
    crashLimit: c.pluginCrashLimit,
    crashWindowMs: c.pluginCrashWindowMs,
    bodyLimit: WORKER_BODY_LIMIT,
    logLevel: c.logLevel,
  };
  // one set of counters: the metrics read deaths and forwarded requests of worker and process plugins alike
  const stats = new WorkerStats();
  const worker = new WorkerRuntime(limits, stats);
  const process = new ProcessRuntime(limits, identityFor(c.pluginUid, c.pluginGid), stats);
  return new Runtimes({ inline, worker, process }, c.pluginIsolation, c.uploadIsolation);
}
