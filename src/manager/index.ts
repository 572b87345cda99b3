import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactStore } from '../artifacts/index.js';
import type { PluginCompiler } from '../compiler/index.js';
import type { SecretEnvironment } from '../config/plugins/index.js';
import type { PluginRepository, PluginRow, PluginWithEndpoints } from '../db/index.js';
import { type HostError, isHostError, recordError } from '../errors/index.js';
import type { CanaryWatch } from '../releases/canary.js';
import { type ReleaseTarget, targetFor } from '../releases/selection.js';
import type { Dispatcher } from '../routing/index.js';
import type { LoadedVersion, Runtimes } from '../runtime/index.js';
import type { PluginFactory } from '../sdk/index.js';
import type { SourceArchives } from '../uploads/index.js';
import { type RecordedMetadata, VersionConfigs } from './configs.js';
import { type Decision, type DecisionInput, decide } from './decide.js';
import { type ManagerEvents, ObservedState, type PluginRecord, type PluginSnapshot } from './observed.js';
import { DesiredPublisher } from './publish-desired.js';
import { isSourceError, type Resolved, Resolver } from './resolve.js';
import { Rollout } from './rollout.js';
import { Scheduler } from './scheduler.js';

export type { RecordedMetadata } from './configs.js';
export type { FailedAttempt, ManagerEvents, PluginSnapshot } from './observed.js';
export { canTransition, type PluginState, transition } from './state.js';

export interface ManagerOptions {
  nodeId: string;
  pluginsDir: string;
  hookTimeoutMs: number;
  drainTimeoutMs: number;
  repo: PluginRepository;
  compiler: PluginCompiler;
  artifacts: ArtifactStore;
  /** The runtimes by isolation mode; each plugin runs in the one its row (or the default) names. */
  runtimes: Runtimes;
  dispatcher: Dispatcher;
  log: FastifyBaseLogger;
  /** Plugins compiled into the host (type `static`), by name. */
  staticPlugins?: ReadonlyMap<string, PluginFactory>;
  /** Where plugins' secret references resolve (default: none resolve). */
  environment?: SecretEnvironment;
  /** The metadata recorded with each published version (read instead of evaluating the version once more). */
  recordedMetadata?: RecordedMetadata;
  /** Watches the candidates of staged rollouts this node is a canary of (none: nothing bakes here). */
  canary?: CanaryWatch;
  /** Source archives of uploaded plugins. */
  sources?: SourceArchives;
}

/** The outcome of resolving, as `decide` reads it; the resolved code is kept for loading it. */
type Resolution = NonNullable<DecisionInput['resolution']> & { resolved?: Resolved };

/**
 * Turns desired state (the `plugins` rows) into what this node serves. Every
 * change goes through `reconcile(name)`: the scheduler runs `reconcileOnce`
 * in the plugin's lane, which re-reads the row, decides what should serve
 * and asks the rollout to load, swap or unload it. A failure is recorded and
 * never replaces a serving version.
 */
export class PluginManager extends EventEmitter<ManagerEvents> {
  private readonly observed: ObservedState;
  private readonly scheduler: Scheduler;
  private readonly resolver: Resolver;
  private readonly rollout: Rollout;
  private readonly desired: DesiredPublisher;
  private readonly configs: VersionConfigs;
  private stopped = false;

  constructor(private readonly o: ManagerOptions) {
    super();
    this.configs = new VersionConfigs({ runtimes: o.runtimes, environment: o.environment ?? {}, recorded: o.recordedMetadata });
    this.observed = new ObservedState({ nodeId: o.nodeId, repo: o.repo, log: o.log, events: this });
    this.resolver = new Resolver(o);
    this.scheduler = new Scheduler({
      run: (name, row) => this.reconcileOnce(name, row),
      list: () => o.repo.list(),
      known: () => this.observed.names(),
      beforeFirstRound: (rows) => this.beforeFirstRound(rows),
      afterFirstRound: async () => {
        o.artifacts.dropReadAhead();
        await Promise.all([this.desired.release(), this.observed.releaseWrites()]);
      },
      log: o.log,
    });
    this.rollout = new Rollout({
      runtimes: o.runtimes,
      resolver: this.resolver,
      dispatcher: o.dispatcher,
      observed: this.observed,
      configs: this.configs,
      log: o.log,
      hookTimeoutMs: o.hookTimeoutMs,
      drainTimeoutMs: o.drainTimeoutMs,
      admitted: (name) => this.scheduler.admitted(name),
    });
    this.desired = new DesiredPublisher({ repo: o.repo, artifacts: o.artifacts, log: o.log });
  }

  /** Reconciles one plugin; resolves when a run that started after this call is done. */
  reconcile(name: string): Promise<void> {
    return this.scheduler.reconcile(name);
  }

  /** Reconciles every plugin known to the database or loaded here. Used at start, after (re)LISTEN and periodically. */
  reconcileAll(): Promise<void> {
    return this.scheduler.reconcileAll();
  }

  /** Waits for every lane to be idle (tests, shutdown). */
  idle(): Promise<void> {
    return this.scheduler.idle();
  }

  snapshot(name: string): PluginSnapshot | undefined {
    return this.observed.snapshot(name);
  }

  snapshots(): PluginSnapshot[] {
    return this.observed.snapshots();
  }

  serving(name: string): LoadedVersion | undefined {
    return this.observed.get(name)?.serving;
  }

  /**
   * How many plugins this manager holds anything for: observed records, scheduling state, publication
   * marks. Bounded by the plugins that exist: a notification naming no plugin leaves nothing behind.
   */
  retained(): { records: number; scheduled: number; published: number } {
    return { records: this.observed.names().length, scheduled: this.scheduler.remembered(), published: this.desired.remembered };
  }

  /** The `generation` of the row the serving version was loaded for; -1 when nothing serves. */
  servingGeneration(name: string): number {
    return this.observed.get(name)?.servingGeneration ?? -1;
  }

  /**
   * Before the first full reconcile: one type-check program for every source that changed, the digests
   * and recorded metadata of the versions about to load read in one query each, and the observed state
   * and endpoint lists of the round written together when it ends, instead of round trips per plugin.
   */
  private async beforeFirstRound(rows: readonly PluginWithEndpoints[]): Promise<void> {
    this.observed.holdWrites();
    this.desired.hold();
    const versions: Array<{ name: string; hash: string }> = [];
    // a pinned plugin or a rollout's target is served from its stored version: its source is not compiled
    const fromSource: PluginWithEndpoints[] = [];
    for (const r of rows) {
      if (r.status !== 'active' || r.type !== 'dynamic') continue;
      const target = targetFor(r, this.o.nodeId);
      if (target === undefined) fromSource.push(r);
      const hash = target?.hash ?? r.artifactHash;
      if (hash !== null) versions.push({ name: r.name, hash });
    }
    await Promise.all([
      this.resolver.prepare(fromSource),
      // best effort: a digest not read ahead is read when its artifact is checked
      this.o.artifacts.readAheadDigests(versions.map((v) => v.hash)).catch(() => undefined),
      this.configs.readAhead(versions),
    ]);
  }

  /**
   * One reconcile run for one plugin. Runs only inside its lane. `decide` says what to do from the row and
   * this node's record; this carries it out (the I/O: unload, resolve, load, publish) and asks again while
   * the step continues the run.
   */
  private async reconcileOnce(name: string, prefetched: PluginWithEndpoints | undefined): Promise<void> {
    if (this.stopped) return;
    const row = prefetched ?? (await this.o.repo.getByName(name));
    const input: DecisionInput = { nodeId: this.o.nodeId, row, observed: this.observed.get(name) };
    let tookOut = false;
    for (;;) {
      const d = decide(input);
      if (d.kind === 'ignore') return;
      const rec = this.observed.ensure(name);
      input.observed = rec;
      if (d.kind === 'take-out-crashed' && !tookOut) {
        tookOut = true;
        await this.takeOutCrashed(rec, d.failedKey);
        continue;
      }
      if (d.kind === 'resolve') {
        if (await this.noteRelease(rec, row as PluginRow, d.target)) await this.observed.publish(rec);
        if (d.mayBeUnchanged && (await this.unchangedSource(rec, row as PluginWithEndpoints))) {
          this.o.canary?.observe(name, d.target, rec.serving, undefined);
          return;
        }
        input.resolution = await this.resolve(rec, row as PluginWithEndpoints, d.target);
        continue;
      }
      return this.carryOut(d, rec, row as PluginWithEndpoints, input.resolution);
    }
  }

  /** Resolves the code to serve: the outcome for `decide`, the resolved code kept for `carryOut`. */
  private async resolve(rec: PluginRecord, row: PluginWithEndpoints, target: ReleaseTarget | undefined): Promise<Resolution> {
    try {
      // a reload of what serves here loads the new version while its source is type-checked (`Resolved.checked`)
      const resolved =
        target === undefined
          ? await this.resolver.resolve(row, { early: rec.serving !== undefined && rec.state === 'serving' })
          : await this.resolver.fromArtifact(row, target.hash);
      return { ok: true, hash: resolved.hash, mode: resolved.mode, resolved };
    } catch (error) {
      return { ok: false, error, sourceError: isSourceError(error), dbUnavailable: isHostError(error, 'PH_ERR_DB_UNAVAILABLE') };
    }
  }

  /** Carries out a step that ends the run. */
  private async carryOut(d: Decision, rec: PluginRecord, row: PluginWithEndpoints, resolution: Resolution | undefined): Promise<void> {
    const name = rec.name;
    const resolved = resolution?.ok === true ? resolution.resolved : undefined;
    const error = resolution?.ok === false ? resolution.error : undefined;
    switch (d.kind) {
      case 'unload': {
        this.o.canary?.observe(name, undefined, undefined, undefined);
        const freed = await this.rollout.unload(rec, d.reason);
        if (d.reason === 'deleted') {
          this.desired.forget(name);
          await this.observed.forget(name);
        } else {
          this.observed.clearError(rec);
          await this.observed.publish(rec);
        }
        this.observed.changed(name);
        if (freed) this.retryRefused(name);
        return;
      }
      case 'refuse':
        return this.fail(rec, row, d.error, d.failedKey);
      case 'retry-later':
        throw d.error;
      case 'fail-release':
        if (d.target.kind === 'canary') this.canaryFailed(name, d.target, recordError(error));
        return this.fail(rec, row, error, d.failedKey);
      case 'fall-back':
        await this.rollout.fallBack(rec, row, error, await this.resolver.failureKey(row));
        await this.observed.publish(rec);
        return;
      case 'fail-source':
        return this.fail(rec, row, error, await this.resolver.failureKey(row));
      case 'reconfigure':
        this.o.canary?.observe(name, d.target, rec.serving, undefined);
        await this.rollout.reconfigure(rec, row, resolved as Resolved, d.fingerprint);
        await this.observed.publish(rec);
        return;
      case 'keep':
        this.o.canary?.observe(name, d.target, rec.serving, undefined);
        if (!d.confirm) return;
        await this.desired.publish(row, rec.serving as LoadedVersion, resolved as Resolved);
        // The desired state is what serves (a status or path put back, a source reverted): an error is stale.
        if (this.observed.clearError(rec)) {
          this.observed.changed(name);
          await this.observed.publish(rec);
        }
        return;
      case 'wait':
        if (d.sameCode) this.o.canary?.observe(name, d.target, rec.serving, undefined);
        if (d.canaryFailed && d.target?.kind === 'canary' && rec.lastError !== undefined) this.canaryFailed(name, d.target, rec.lastError);
        return;
      case 'load':
        return this.load(rec, row, resolved as Resolved, d.target, d.fingerprint);
      default:
        // `ignore`, `take-out-crashed` and `resolve` are handled by the run itself
        return;
    }
  }

  /** Loads the desired version beside what serves, and swaps it in; a canary that fails here aborts its rollout. */
  private async load(
    rec: PluginRecord,
    row: PluginWithEndpoints,
    resolved: Resolved,
    target: ReleaseTarget | undefined,
    fingerprint: string,
  ): Promise<void> {
    const name = rec.name;
    const before = rec.serving;
    const loaded = await this.rollout.load(rec, row, resolved, fingerprint);
    if (loaded === undefined && target?.kind === 'canary') {
      this.canaryFailed(name, target, rec.lastError ?? { code: 'PH_ERR_INTERNAL', message: 'the candidate was refused' });
    }
    this.o.canary?.observe(name, target, rec.serving, before);
    if (loaded !== undefined) {
      // a version that fails for good later (a worker crash loop) is taken out by the next run
      loaded.onFailed?.(() => void this.reconcile(name));
      await this.desired.publish(row, loaded, resolved);
    }
    await this.observed.publish(rec);
  }

  /**
   * The version failed for good (a worker in a crash loop): take it out, and do not load the same desired
   * state again until it changes (its fingerprint is recorded as failed).
   */
  private async takeOutCrashed(rec: PluginRecord, failedKey: string): Promise<void> {
    const dead = rec.serving as LoadedVersion;
    const failure = dead.failure as HostError;
    await this.rollout.unload(rec, 'crashed');
    this.observed.failed(rec, failure, failedKey, { version: dead.version, hash: dead.hash }, true);
    await this.observed.publish(rec);
    this.retryRefused(rec.name);
  }

  /**
   * Whether nothing changed for a version this node compiled from its source and published (`decide` checked
   * the row against the record): the runtime is the same, the row was published from here, and the source still
   * hashes to what serves. Such a run (a periodic resync, this node's own publication coming back as a
   * notification) then skips the compile step, which reads the artifact back and checks it against its
   * recorded digest, for each plugin; hashing the source stays, as it is how a change on disk is seen.
   */
  private async unchangedSource(rec: PluginRecord, row: PluginWithEndpoints): Promise<boolean> {
    const s = rec.serving;
    if (s === undefined || this.o.runtimes.modeOf(row) !== s.runtime || !this.desired.isPublished(row, s.hash)) return false;
    return (await this.resolver.sourceHash(row)) === s.hash;
  }

  /**
   * A pinned plugin whose source here differs from the pinned version keeps the pinned version, and says so
   * (shown per node). Returns true when the note changed.
   */
  private async noteRelease(rec: PluginRecord, row: PluginRow, target: ReleaseTarget | undefined): Promise<boolean> {
    const differs = target?.kind === 'pinned' && (await this.resolver.sourceDiffers(row, target.hash));
    return this.observed.setNote(rec, differs ? 'source differs from pinned version' : undefined);
  }

  /** The candidate of a rollout did not resolve or load here, a canary node: the rollout is aborted. */
  private canaryFailed(name: string, target: Extract<ReleaseTarget, { kind: 'canary' }>, failure: { code: string; message: string }): void {
    this.o.canary?.loadFailed(name, target.rollout, failure).catch((e: unknown) => {
      this.o.log.warn({ plugin: name, err: e instanceof Error ? e.message : String(e) }, `could not abort the rollout of ${name}`);
    });
  }

  private async fail(rec: PluginRecord, row: PluginRow, err: unknown, fingerprint: string): Promise<void> {
    this.observed.failed(rec, err, fingerprint, { version: row.version, hash: null }, false);
    await this.observed.publish(rec);
  }

  /** Plugins refused for a route conflict get another try once a plugin that held routes is gone. */
  private retryRefused(gone: string): void {
    for (const other of this.observed.all()) {
      if (other.name === gone || other.lastError?.code !== 'PH_ERR_ROUTE_CONFLICT') continue;
      this.observed.allowRetry(other);
      void this.reconcile(other.name);
    }
  }

  /** Unloads everything (shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.o.canary?.stop();
    await this.scheduler.stop();
    await Promise.all(this.observed.all().map((rec) => this.rollout.unload(rec, 'shutdown').catch(() => {})));
    // versions replaced just before shutdown run their cleanup too (each bounded by the drain and hook limits)
    await this.rollout.stop();
  }
}
