import type { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { PluginRepository } from '../db/index.js';
import { describeError, type RecordedError, recordError } from '../errors/index.js';
import type { PluginState } from '../model/index.js';
import type { LoadedVersion } from '../runtime/index.js';
import { NodeStateWriter } from './node-state-writer.js';
import { transition } from './state.js';

export interface FailedAttempt extends RecordedError {
  version: string | null;
  hash: string | null;
}

export type ServedFrom = 'source' | 'artifact' | 'static';

/** This node's view of one plugin. Read-only outside `ObservedState`: every field changes through its methods. */
export interface PluginRecord {
  readonly name: string;
  readonly state: PluginState;
  readonly serving: LoadedVersion | undefined;
  /** The `generation` of the row the serving version was loaded for; -1 when nothing serves. */
  readonly servingGeneration: number;
  /** The configuration revision the serving version runs with (0: none stored); -1 when nothing serves. */
  readonly servingConfigRevision: number;
  readonly servingFrom: ServedFrom | undefined;
  readonly lastError: FailedAttempt | undefined;
  /** Fingerprint of the last desired state that failed; not retried until the desired state changes. */
  readonly failedFingerprint: string | undefined;
  /** Not an error, but worth knowing (a source on disk that differs from the pinned version). */
  readonly note: string | undefined;
}

type MutableRecord = { -readonly [K in keyof PluginRecord]: PluginRecord[K] };

export interface PluginSnapshot {
  name: string;
  state: PluginState;
  serving: {
    version: string;
    hash: string;
    loaded_at: string;
    from: string | undefined;
    /** The runtime the version runs in here (`inline` or `worker`). */
    isolation: string;
    /** Revision of the configuration the version runs with. */
    config_revision: number;
    /** What the runtime reports of it (a worker's state, restarts, heap, event-loop delay). */
    runtime?: Record<string, unknown>;
  } | null;
  last_error: FailedAttempt | null;
  note: string | null;
}

export interface ManagerEvents {
  change: [name: string];
  loaded: [name: string, durationMs: number, reload: boolean];
  failed: [name: string, code: string];
  unloaded: [name: string];
}

export interface ObservedStateOptions {
  nodeId: string;
  repo: PluginRepository;
  log: FastifyBaseLogger;
  events: EventEmitter<ManagerEvents>;
}

/**
 * What this node serves, per plugin, and the one place it changes. Each
 * method is one move of the lifecycle (through `transition`, which refuses
 * illegal moves and logs each one), emits the matching event, and the moves
 * that end an operation record it in `plugin_node_state` (no trigger: a node
 * never wakes itself or its peers by recording what it does).
 */
export class ObservedState {
  private readonly records = new Map<string, MutableRecord>();
  private readonly writer: NodeStateWriter;

  constructor(private readonly o: ObservedStateOptions) {
    this.writer = new NodeStateWriter(o.nodeId, o.repo);
  }

  get(name: string): PluginRecord | undefined {
    return this.records.get(name);
  }

  /** The record of `name`, created `unloaded` on first use. */
  ensure(name: string): PluginRecord {
    let rec = this.records.get(name);
    if (rec === undefined) {
      rec = {
        name,
        state: 'unloaded',
        serving: undefined,
        servingGeneration: -1,
        servingConfigRevision: -1,
        servingFrom: undefined,
        lastError: undefined,
        failedFingerprint: undefined,
        note: undefined,
      };
      this.records.set(name, rec);
    }
    return rec;
  }

  names(): string[] {
    return [...this.records.keys()];
  }

  all(): PluginRecord[] {
    return [...this.records.values()];
  }

  private mut(rec: PluginRecord): MutableRecord {
    return rec as MutableRecord;
  }

  /** A load starts: `loading`, or `reloading` beside a serving version. */
  begin(rec: PluginRecord, reason: string): void {
    transition(this.mut(rec), rec.serving === undefined ? 'loading' : 'reloading', this.o.log, reason);
  }

  /** A load did not complete: back to `serving` (the old version stays) or to `error`. */
  abort(rec: PluginRecord, reason: string): void {
    transition(this.mut(rec), rec.serving === undefined ? 'error' : 'serving', this.o.log, reason);
  }

  /** The route table now points at `version`: it serves, and any earlier failure is over. */
  served(
    rec: PluginRecord,
    version: LoadedVersion,
    generation: number,
    configRevision: number,
    from: ServedFrom,
    durationMs: number,
  ): void {
    const m = this.mut(rec);
    const reload = m.serving !== undefined;
    m.serving = version;
    m.servingGeneration = generation;
    m.servingConfigRevision = configRevision;
    m.servingFrom = from;
    m.lastError = undefined;
    m.failedFingerprint = undefined;
    transition(m, 'serving', this.o.log, reload ? 'swapped' : 'loaded');
    this.o.events.emit('loaded', rec.name, durationMs, reload);
    this.o.events.emit('change', rec.name);
  }

  /** The serving version took configuration `revision` in place (`onConfigChange`): it keeps serving, any earlier failure is over. */
  reconfigured(rec: PluginRecord, revision: number): void {
    const m = this.mut(rec);
    m.servingConfigRevision = revision;
    m.lastError = undefined;
    m.failedFingerprint = undefined;
    this.o.events.emit('change', rec.name);
  }

  /** The version left the route table and drains: `unloading`, nothing serves. */
  unloading(rec: PluginRecord, reason: string): void {
    const m = this.mut(rec);
    transition(m, 'unloading', this.o.log, reason);
    m.serving = undefined;
    m.servingGeneration = -1;
    m.servingConfigRevision = -1;
    m.servingFrom = undefined;
  }

  /** Nothing of the plugin runs any more (after an unload, or leaving `error` when disabled). */
  unloaded(rec: PluginRecord, reason: string): void {
    const wasServing = rec.state === 'unloading';
    transition(this.mut(rec), 'unloaded', this.o.log, reason);
    if (wasServing) this.o.events.emit('unloaded', rec.name);
  }

  /**
   * An attempt failed: recorded (shown by the API, published), logged unless
   * the same failure repeats, and if nothing serves the plugin is in `error`.
   * `fingerprint` names the desired state that failed, which is not retried
   * until it changes.
   */
  failed(rec: PluginRecord, err: unknown, fingerprint: string, at: { version: string | null; hash: string | null }, log: boolean): void {
    const m = this.mut(rec);
    const r = recordError(err);
    const repeated = m.lastError?.message === r.message && m.failedFingerprint === fingerprint;
    m.lastError = { ...r, ...at };
    m.failedFingerprint = fingerprint;
    if (m.serving === undefined && m.state === 'unloaded') transition(m, 'error', this.o.log, r.code);
    if (!repeated || log) {
      const keeps = m.serving ? `; version ${m.serving.version} keeps serving` : '';
      this.o.log.error({ plugin: rec.name, code: r.code }, `plugin ${rec.name} failed: ${r.message}${keeps}`);
    }
    this.o.events.emit('failed', rec.name, r.code);
    this.o.events.emit('change', rec.name);
  }

  /** The desired state is what serves (or nothing is wanted): an earlier failure is stale. Returns true if one was cleared. */
  clearError(rec: PluginRecord): boolean {
    const m = this.mut(rec);
    if (m.lastError === undefined && m.failedFingerprint === undefined) return false;
    m.lastError = undefined;
    m.failedFingerprint = undefined;
    return true;
  }

  /** Lets the same desired state be tried again (a plugin refused for a conflict, once the route's owner left). */
  allowRetry(rec: PluginRecord): void {
    this.mut(rec).failedFingerprint = undefined;
  }

  /** Sets (or clears) the record's note; returns true when it changed (the caller publishes it). */
  setNote(rec: PluginRecord, note: string | undefined): boolean {
    const m = this.mut(rec);
    if (m.note === note) return false;
    m.note = note;
    if (note !== undefined) this.o.log.warn({ plugin: rec.name }, `plugin ${rec.name}: ${note}`);
    this.o.events.emit('change', rec.name);
    return true;
  }

  changed(name: string): void {
    this.o.events.emit('change', name);
  }

  /** The plugin's row is gone: forget it here and in the observed-state table. */
  async forget(name: string): Promise<void> {
    this.records.delete(name);
    await this.writer.remove(name).catch(() => {});
  }

  /** From now on until `releaseWrites()`, observed state is written in one statement at the end (the first round). */
  holdWrites(): void {
    this.writer.hold();
  }

  async releaseWrites(): Promise<void> {
    try {
      await this.writer.release();
    } catch (err) {
      this.o.log.debug({ err: describeError(err) }, 'could not record observed state');
    }
  }

  /** Writes this node's observed state for one plugin (best effort: the next reconcile rewrites it). */
  async publish(rec: PluginRecord): Promise<void> {
    const e = rec.lastError;
    try {
      await this.writer.record({
        nodeId: this.o.nodeId,
        pluginName: rec.name,
        state: rec.state,
        servingVersion: rec.serving?.version ?? null,
        servingHash: rec.serving?.hash ?? null,
        isolation: rec.serving?.runtime ?? null,
        servingConfigRevision: rec.serving === undefined ? null : rec.servingConfigRevision,
        note: rec.note ?? null,
        failedVersion: e?.version ?? null,
        failedHash: e?.hash ?? null,
        lastErrorCode: e?.code ?? null,
        lastError: e?.message ?? null,
        lastErrorAt: e ? new Date(e.at) : null,
      });
    } catch (err) {
      this.o.log.debug({ plugin: rec.name, err: describeError(err) }, 'could not record observed state');
    }
  }

  snapshot(name: string): PluginSnapshot | undefined {
    const rec = this.records.get(name);
    if (rec === undefined) return undefined;
    const s = rec.serving;
    return {
      name,
      state: rec.state,
      serving: s
        ? {
            version: s.version,
            hash: s.hash,
            loaded_at: s.loadedAt.toISOString(),
            from: rec.servingFrom,
            isolation: s.runtime,
            ...(s.details === undefined ? {} : { runtime: s.details() }),
            config_revision: rec.servingConfigRevision,
          }
        : null,
      last_error: rec.lastError ?? null,
      note: rec.note ?? null,
    };
  }

  snapshots(): PluginSnapshot[] {
    return [...this.records.keys()].map((n) => this.snapshot(n) as PluginSnapshot);
  }
}
