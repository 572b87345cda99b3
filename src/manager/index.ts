import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import { type Artifact, type Compiler, hashSource } from '../compiler/index.js';
import type { EndpointInput, PluginRepository, PluginRow, PluginWithEndpoints } from '../db/index.js';
import { isConnectionError, PLUGIN_STATUSES } from '../db/index.js';
import { discover, resolveInside } from '../discovery/index.js';
import { describeError, HostError, type RecordedError, recordError } from '../errors/index.js';
import { isValidPluginName, type LoadedPlugin, type LoadRequest, loadPlugin, trialLoad } from '../loader/index.js';
import type { Dispatcher } from '../routing/dispatcher.js';
import type { PluginFactory } from '../sdk/index.js';
import { Lanes } from './lanes.js';
import { compileAndPublish } from './publish.js';
import { type PluginState, transition } from './state.js';

export { Lanes } from './lanes.js';
export { compileAndPublish, type Published, publishedFields } from './publish.js';
export { canTransition, type PluginState, transition } from './state.js';

export interface ManagerOptions {
  nodeId: string;
  pluginsDir: string;
  hookTimeoutMs: number;
  drainTimeoutMs: number;
  repo: PluginRepository;
  compiler: Compiler;
  dispatcher: Dispatcher;
  log: FastifyBaseLogger;
  /** Plugins compiled into the host (type `static`), by name. */
  staticPlugins?: ReadonlyMap<string, PluginFactory>;
}

export interface FailedAttempt extends RecordedError {
  version: string | null;
  hash: string | null;
}

/** This node's view of one plugin. */
interface Runtime {
  name: string;
  state: PluginState;
  serving: LoadedPlugin | undefined;
  servingGeneration: number;
  servingFrom: 'source' | 'artifact' | 'static' | undefined;
  lastError: FailedAttempt | undefined;
  /** Fingerprint of the last desired state that failed; not retried until the desired state changes. */
  failedFingerprint: string | undefined;
}

export interface PluginSnapshot {
  name: string;
  state: PluginState;
  serving: { version: string; hash: string; loaded_at: string; from: string | undefined } | null;
  last_error: FailedAttempt | null;
}

export interface ManagerEvents {
  change: [name: string];
  loaded: [name: string, durationMs: number, reload: boolean];
  failed: [name: string, code: string];
  unloaded: [name: string];
}

/**
 * Turns desired state (the `plugins` rows) into what this node serves. Every
 * change goes through `reconcile(name)`, which runs in the plugin's lane, re-reads
 * the row and compiles, loads, swaps or unloads as needed. A failure is recorded
 * and never replaces a serving version.
 */
export class PluginManager extends EventEmitter<ManagerEvents> {
  private readonly runtimes = new Map<string, Runtime>();
  /** Times a run was asked for, per plugin: tells whether a listed row may be older than what a lane saw. */
  private readonly requestSeq = new Map<string, number>();
  /** Rows read by a full reconcile, handed to the lane run it starts. */
  private readonly prefetched = new Map<string, PluginWithEndpoints>();
  private readonly lanes: Lanes;
  /** Directories found by discovery that could not be registered, by name. */
  readonly discoveryErrors = new Map<string, RecordedError & { source_path: string }>();
  /** True after a database call failed for connectivity; cleared by the next success. */
  dbDegraded = false;
  private stopped = false;
  /** Plugins whose reconcile was cut short by a lost database connection ('' = the full reconcile), retried with backoff. */
  private readonly postponed = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  /** Row id -> hash this node last published successfully; see `publishDesired`. */
  private readonly published = new Map<string, string>();
  /**
   * During the first full reconcile, new versions enter the route table in registration order
   * (`created_at`, then name): of two plugins claiming one route, the earlier registered keeps it,
   * whichever loaded faster. `done` settles when that plugin's first reconcile has finished.
   */
  private admission: { order: string[]; done: Map<string, Promise<void>> } | undefined;
  private admittedOnce = false;
  /** Replaced versions still draining or running `cleanup`; awaited by `stop()`. */
  private readonly retiring = new Set<Promise<void>>();

  constructor(private readonly o: ManagerOptions) {
    super();
    this.lanes = new Lanes(
      (name) => this.reconcileOnce(name),
      (name, err) => {
        if (isConnectionError(err) || isConnectionError((err as { cause?: unknown }).cause)) {
          this.dbDegraded = true;
          this.o.log.warn({ plugin: name, err: describeError(err) }, `reconcile of ${name} postponed: database unavailable`);
          this.retryLater(name);
        } else {
          this.o.log.error({ plugin: name, err }, `reconcile of ${name} failed: ${describeError(err)}`);
        }
      },
    );
  }

  /** Reconciles one plugin; resolves when a run that started after this call is done. */
  reconcile(name: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.requestSeq.set(name, (this.requestSeq.get(name) ?? 0) + 1);
    return this.lanes.request(name);
  }

  /** Reconciles every plugin known to the database or loaded here. Used at start, after (re)LISTEN and periodically. */
  async reconcileAll(): Promise<void> {
    if (this.stopped) return;
    let rows: PluginWithEndpoints[];
    const seqBefore = new Map(this.requestSeq);
    try {
      rows = await this.o.repo.list();
      this.dbDegraded = false;
      this.retryDelayMs = 0;
    } catch (err) {
      this.dbDegraded = true;
      this.o.log.warn({ err: describeError(err) }, 'full reconcile postponed: database unavailable');
      this.retryLater('');
      return;
    }
    // The rows just read save each lane its own read, unless a run for that plugin was asked for since the
    // list was requested (it may have seen a newer row) or is under way: then the lane reads for itself.
    for (const r of rows) {
      if ((this.requestSeq.get(r.name) ?? 0) === (seqBefore.get(r.name) ?? 0) && !this.lanes.running(r.name)) {
        this.prefetched.set(r.name, r);
      }
    }
    const names = new Set([...rows.map((r) => r.name), ...this.runtimes.keys()]);
    if (!this.admittedOnce) {
      // Sources changed while this node was down are checked together, in one program.
      const dirs: string[] = [];
      for (const r of rows) {
        const source = r.type === 'dynamic' && r.status === 'active' ? (r.sourcePath ?? r.path) : null;
        const dir = source === null ? undefined : resolveInside(this.o.pluginsDir, source);
        if (dir !== undefined) dirs.push(dir);
      }
      this.o.compiler.prepare(dirs);
      this.admittedOnce = true;
      const order = [...rows]
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map((r) => r.name);
      const done = new Map<string, Promise<void>>();
      this.admission = { order, done };
      for (const n of order) done.set(n, this.reconcile(n));
      try {
        await Promise.all([...names].map((n) => done.get(n) ?? this.reconcile(n)));
      } finally {
        this.admission = undefined;
      }
      return;
    }
    await Promise.all([...names].map((n) => this.reconcile(n)));
  }

  /** During the first full reconcile: waits until every plugin registered before `name` was admitted or refused. */
  private async admittedInOrder(name: string): Promise<void> {
    const a = this.admission;
    if (a === undefined) return;
    const i = a.order.indexOf(name);
    if (i <= 0) return;
    await Promise.all(a.order.slice(0, i).map((n) => a.done.get(n)));
  }

  /**
   * A notification is consumed once: if the run it woke failed on the database
   * connection (a killed backend, a restart), nothing else would wake it before
   * the next full reconcile. Retry it, with capped backoff, until a run reads the database.
   */
  private retryLater(name: string): void {
    if (this.stopped) return;
    this.postponed.add(name);
    if (this.retryTimer !== undefined) return;
    this.retryDelayMs = Math.min(30_000, this.retryDelayMs === 0 ? 250 : this.retryDelayMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const names = [...this.postponed];
      this.postponed.clear();
      if (names.includes('')) void this.reconcileAll();
      else for (const n of names) void this.reconcile(n);
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Waits for every lane to be idle (tests, shutdown). */
  idle(): Promise<void> {
    return this.lanes.idle();
  }

  get activeLanes(): number {
    return this.lanes.active;
  }

  snapshot(name: string): PluginSnapshot | undefined {
    const rt = this.runtimes.get(name);
    if (rt === undefined) return undefined;
    const s = rt.serving;
    return {
      name,
      state: rt.state,
      serving: s ? { version: s.version, hash: s.hash, loaded_at: s.loadedAt.toISOString(), from: rt.servingFrom } : null,
      last_error: rt.lastError ?? null,
    };
  }

  snapshots(): PluginSnapshot[] {
    return [...this.runtimes.keys()].map((n) => this.snapshot(n) as PluginSnapshot);
  }

  serving(name: string): LoadedPlugin | undefined {
    return this.runtimes.get(name)?.serving;
  }

  /** The `generation` of the row the serving version was loaded for; -1 when nothing serves. */
  servingGeneration(name: string): number {
    return this.runtimes.get(name)?.servingGeneration ?? -1;
  }

  /**
   * Scans the plugins directory and registers each valid plugin the database
   * does not know yet. A trial load (evaluate, factory, metadata) proves it
   * before the row is written; a directory that fails is reported, not registered.
   */
  async discoverAndRegister(): Promise<{ registered: string[]; failed: string[] }> {
    const registered: string[] = [];
    const failed: string[] = [];
    const found = discover(this.o.pluginsDir);
    // One type-check program for every new plugin found, instead of one per plugin.
    this.o.compiler.prepare(found.filter((d) => d.problem === undefined).map((d) => d.dir));
    for (const d of found) {
      if (d.problem !== undefined) {
        this.noteDiscoveryError(d.name, d.dir, d.problem);
        failed.push(d.name);
        continue;
      }
      const existing = await this.o.repo.getByName(d.name);
      if (existing !== undefined) {
        this.discoveryErrors.delete(d.name);
        continue;
      }
      try {
        await this.registerDirectory(d.name, d.dir);
        registered.push(d.name);
      } catch (err) {
        if (isConnectionError(err)) throw err;
        this.noteDiscoveryError(d.name, d.dir, err);
        failed.push(d.name);
      }
    }
    return { registered, failed };
  }

  /** Validates and registers one plugin directory (discovery and `POST /plugins`). */
  async registerDirectory(
    name: string,
    dir: string,
    status: 'active' | 'inactive' = 'active',
  ): Promise<{ row: PluginRow; created: boolean }> {
    const { artifact, metadata } = await compileAndPublish(
      { compiler: this.o.compiler, repo: this.o.repo, log: this.o.log, hookTimeoutMs: this.o.hookTimeoutMs },
      name,
      dir,
    );
    const res = await this.o.repo.insertIfAbsent(
      {
        name,
        description: metadata.description,
        version: metadata.version,
        author: metadata.author,
        type: 'dynamic',
        path: dir,
        sourcePath: dir,
        binaryPath: artifact.path,
        artifactHash: artifact.hash,
        status,
      },
      (metadata.endpoints ?? []).map((e) => ({ method: e.method, path: e.path, handler: e.handler ?? '', type: e.type ?? 'REST' })),
    );
    this.discoveryErrors.delete(name);
    if (res.created) this.o.log.info({ plugin: name, version: metadata.version, hash: artifact.hash }, `registered plugin ${name}`);
    return res;
  }

  /** Registers static plugins (compiled into the host) that the database does not know yet. */
  async registerStatic(): Promise<void> {
    for (const [name, factory] of this.o.staticPlugins ?? []) {
      const metadata = trialLoad(this.loadRequest(name, 'static', { kind: 'static', factory }, undefined));
      await this.o.repo.insertIfAbsent(
        { name, description: metadata.description, version: metadata.version, author: metadata.author, type: 'static', status: 'active' },
        (metadata.endpoints ?? []).map((e) => ({ method: e.method, path: e.path, handler: e.handler ?? '' })),
      );
    }
  }

  private noteDiscoveryError(name: string, dir: string, err: unknown): void {
    const rec = recordError(err);
    const prev = this.discoveryErrors.get(name);
    if (prev?.message !== rec.message) this.o.log.error({ plugin: name, code: rec.code }, `plugin ${name} not registered: ${rec.message}`);
    this.discoveryErrors.set(name, { ...rec, source_path: dir });
    this.emit('change', name);
  }

  private runtime(name: string): Runtime {
    let rt = this.runtimes.get(name);
    if (rt === undefined) {
      rt = {
        name,
        state: 'unloaded',
        serving: undefined,
        servingGeneration: -1,
        servingFrom: undefined,
        lastError: undefined,
        failedFingerprint: undefined,
      };
      this.runtimes.set(name, rt);
    }
    return rt;
  }

  private loadRequest(name: string, hash: string, code: LoadRequest['code'], sourceDir: string | undefined): LoadRequest {
    return { name, hash, code, sourceDir, log: this.o.log.child({ plugin: name }), hookTimeoutMs: this.o.hookTimeoutMs };
  }

  /** One reconcile run for one plugin. Runs only inside its lane. */
  private async reconcileOnce(name: string): Promise<void> {
    if (this.stopped) return;
    const pre = this.prefetched.get(name);
    this.prefetched.delete(name);
    const row = pre ?? (await this.o.repo.getByName(name));
    this.dbDegraded = false;
    this.retryDelayMs = 0;
    const rt = this.runtime(name);

    if (row === undefined || row.status === 'inactive') {
      await this.unload(rt, row === undefined ? 'deleted' : 'disabled');
      if (row === undefined) {
        this.runtimes.delete(name);
        await this.o.repo.removeNodeState(this.o.nodeId, name).catch(() => {});
      } else {
        rt.lastError = undefined;
        rt.failedFingerprint = undefined;
        await this.publishObserved(rt);
      }
      this.emit('change', name);
      return;
    }
    if (!PLUGIN_STATUSES.includes(row.status)) {
      return this.fail(
        rt,
        row,
        null,
        new HostError('PH_ERR_DESIRED_STATE_INVALID', `${name}: unknown status "${row.status}" (expected active or inactive)`),
        `status:${row.status}`,
      );
    }
    if (!isValidPluginName(name)) {
      return this.fail(rt, row, null, new HostError('PH_ERR_PLUGIN_NAME_INVALID', `${name}: not a valid plugin name`), 'name');
    }

    // Resolve what should serve: a fingerprint that changes whenever a reload is wanted.
    let resolved: Resolved;
    try {
      resolved = await this.resolve(row);
    } catch (err) {
      // a lost connection is not the plugin's fault: the lane's error handler postpones and retries
      if (isConnectionError(err) || isConnectionError((err as { cause?: unknown }).cause)) throw err;
      const key = `resolve:${row.artifactHash}:${row.sourcePath}:${sourceFingerprint(row, this.o.pluginsDir)}:${row.generation}`;
      if (rt.serving === undefined && row.type === 'dynamic' && row.artifactHash !== null && isSourceError(err)) {
        return this.fallBack(rt, row, err, key);
      }
      return this.fail(rt, row, null, err, key);
    }
    const fingerprint = `${resolved.hash}:${row.generation}`;
    if (rt.serving !== undefined && rt.serving.hash === resolved.hash && rt.servingGeneration === row.generation) {
      if (rt.state === 'serving') {
        await this.publishDesired(row, rt.serving, resolved);
        if (rt.lastError !== undefined) {
          // The desired state is what serves (a status or path put back, a source reverted): the error is stale.
          rt.lastError = undefined;
          rt.failedFingerprint = undefined;
          this.emit('change', name);
          await this.publishObserved(rt);
        }
      }
      return;
    }
    if (rt.failedFingerprint === fingerprint) return; // same desired state failed already; wait for a change
    await this.load(rt, row, resolved, fingerprint);
  }

  private async resolve(row: PluginRow): Promise<Resolved> {
    if (row.type === 'static') {
      const factory = this.o.staticPlugins?.get(row.name);
      if (factory === undefined)
        throw new HostError('PH_ERR_ARTIFACT_MISSING', `${row.name}: static plugin is not compiled into this host`);
      return {
        hash: `static:${row.version}`,
        from: 'static',
        code: { kind: 'static', factory },
        sourceDir: undefined,
        artifact: undefined,
      };
    }
    if (row.type !== 'dynamic')
      throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${row.name}: unknown type "${row.type}" (expected dynamic or static)`);
    const source = row.sourcePath ?? row.path;
    const dir = source === null ? undefined : resolveInside(this.o.pluginsDir, source);
    if (dir !== undefined) {
      if (path.basename(dir) !== row.name) {
        throw new HostError(
          'PH_ERR_DESIRED_STATE_INVALID',
          `${row.name}: source directory ${path.basename(dir)} does not match the plugin name`,
        );
      }
      const artifact = await this.o.compiler.compileAsync(dir);
      return {
        hash: artifact.hash,
        from: 'source',
        code: { kind: 'bundle', bundle: artifact.bundle, filename: artifact.path },
        sourceDir: dir,
        artifact,
      };
    }
    // No usable source here: load the published artifact by hash (disk cache first, then the database).
    if (row.artifactHash === null) {
      if (source !== null && existsSync(path.resolve(this.o.pluginsDir, source))) {
        throw new HostError(
          'PH_ERR_PLUGIN_PATH_OUTSIDE',
          `${row.name}: source path ${source} is outside PLUGINS_DIR (${this.o.pluginsDir}); refusing to load it`,
        );
      }
      throw new HostError(
        'PH_ERR_PLUGIN_SOURCE_MISSING',
        `${row.name}: source ${source ?? '(none)'} is not available on this node and no artifact was published`,
      );
    }
    return this.resolveArtifact(row.name, row.artifactHash);
  }

  /** A published artifact by hash: the disk cache first, then the database. */
  private async resolveArtifact(name: string, hash: string): Promise<Resolved> {
    // the hash becomes a file name: never let a hand-written value leave the artifacts directory
    if (!ARTIFACT_HASH.test(hash)) {
      throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${name}: artifact_hash ${JSON.stringify(hash)} is not a content hash`);
    }
    let artifact: Artifact | undefined = this.o.compiler.readArtifact(hash);
    if (artifact === undefined) {
      const stored = await this.o.repo.getArtifact(hash);
      if (stored === undefined) throw new HostError('PH_ERR_ARTIFACT_MISSING', `${name}: artifact ${hash} is not in the artifact store`);
      artifact = this.o.compiler.storeArtifact(stored.hash, stored.bundle);
      if (this.o.compiler.readArtifact(stored.hash) === undefined) {
        throw new HostError(
          'PH_ERR_ARTIFACT_INCOMPATIBLE',
          `${name}: artifact ${stored.hash} was built by an incompatible host (${stored.format}) and no source is available to rebuild it`,
        );
      }
    }
    return {
      hash: artifact.hash,
      from: 'artifact',
      code: { kind: 'bundle', bundle: artifact.bundle, filename: artifact.path },
      sourceDir: undefined,
      artifact: undefined,
    };
  }

  private async load(rt: Runtime, row: PluginRow, r: Resolved, fingerprint: string): Promise<void> {
    const reload = rt.serving !== undefined;
    const t0 = performance.now();
    transition(rt, reload ? 'reloading' : 'loading', this.o.log, `desired ${r.hash}`);
    let next: LoadedPlugin;
    try {
      next = await loadPlugin(this.loadRequest(rt.name, r.hash, r.code, r.sourceDir));
    } catch (err) {
      transition(rt, reload ? 'serving' : 'error', this.o.log, 'load failed');
      return this.fail(rt, row, r, err, fingerprint, true, this.versionOf(rt.name, r));
    }
    await this.admittedInOrder(rt.name);
    // Build the new route table before anything changes: a conflict refuses the new version.
    let table: ReturnType<Dispatcher['current']['with']>;
    try {
      table = this.o.dispatcher.current.with(next, this.o.dispatcher.coreRoutes);
    } catch (err) {
      await next.unload(this.o.hookTimeoutMs);
      transition(rt, reload ? 'serving' : 'error', this.o.log, 'route conflict');
      return this.fail(rt, row, r, err, fingerprint, true, next.version);
    }
    const old = rt.serving;
    this.o.dispatcher.swap(table);
    rt.serving = next;
    rt.servingGeneration = row.generation;
    rt.servingFrom = r.from;
    rt.lastError = undefined;
    rt.failedFingerprint = undefined;
    transition(rt, 'serving', this.o.log, reload ? 'swapped' : 'loaded');
    const ms = performance.now() - t0;
    this.o.log.info(
      { plugin: rt.name, version: next.version, hash: next.hash, ms: Math.round(ms * 10) / 10, from: r.from },
      `plugin ${rt.name} ${reload ? 'reloaded' : 'loaded'} (${next.version})`,
    );
    this.emit('loaded', rt.name, ms, reload);
    this.emit('change', rt.name);
    if (old !== undefined) this.retireInBackground(old);
    await this.publishDesired(row, next, r);
    await this.publishObserved(rt);
  }

  /**
   * Nothing of this plugin serves here yet (a restart) and its source no longer builds: serve the
   * artifact the row names — the last version that loaded and was published — and show the source's
   * error as `last_error`, as a failed reload of a running node would. A source change or a reload
   * tries the source again.
   */
  private async fallBack(rt: Runtime, row: PluginRow, sourceErr: unknown, key: string): Promise<void> {
    if (rt.failedFingerprint === key) return;
    let r: Resolved;
    try {
      r = await this.resolveArtifact(row.name, row.artifactHash as string);
    } catch (err) {
      if (isConnectionError(err) || isConnectionError((err as { cause?: unknown }).cause)) throw err;
      return this.fail(rt, row, null, sourceErr, key);
    }
    await this.load(rt, row, r, key);
    // served: the source error is recorded beside the serving version; not served: it is the root cause shown
    return this.fail(rt, row, null, sourceErr, key, true);
  }

  private retireInBackground(old: LoadedPlugin): void {
    const p = this.retire(old).finally(() => this.retiring.delete(p));
    this.retiring.add(p);
  }

  /** Lets a replaced version finish its in-flight requests (bounded), then unloads it. */
  private async retire(old: LoadedPlugin): Promise<void> {
    const drained = await old.drain(this.o.drainTimeoutMs);
    if (!drained)
      old.ctx.log.warn(
        { inflight: old.inflight },
        `version ${old.version} did not drain within ${this.o.drainTimeoutMs} ms; unloading anyway`,
      );
    await old.unload(this.o.hookTimeoutMs);
  }

  private async unload(rt: Runtime, reason: string): Promise<void> {
    const old = rt.serving;
    if (old === undefined) {
      if (rt.state === 'error') transition(rt, 'unloaded', this.o.log, reason);
      return;
    }
    transition(rt, 'unloading', this.o.log, reason);
    this.o.dispatcher.swap(this.o.dispatcher.current.without(rt.name, this.o.dispatcher.coreRoutes));
    rt.serving = undefined;
    rt.servingGeneration = -1;
    rt.servingFrom = undefined;
    await this.retire(old);
    transition(rt, 'unloaded', this.o.log, reason);
    this.o.log.info({ plugin: rt.name, reason }, `plugin ${rt.name} unloaded (${reason})`);
    this.emit('unloaded', rt.name);
    this.retryRefused(rt.name);
  }

  /** Plugins refused for a route conflict get another try once a plugin that held routes is gone. */
  private retryRefused(gone: string): void {
    for (const other of this.runtimes.values()) {
      if (other.name === gone || other.lastError?.code !== 'PH_ERR_ROUTE_CONFLICT') continue;
      other.failedFingerprint = undefined;
      void this.reconcile(other.name);
    }
  }

  /**
   * The version a failed load was for, so the failure is not shown under the version that still serves
   * (the row's `version` is the last one published). Metadata only: no hook runs. Undefined if unreadable.
   */
  private versionOf(name: string, r: Resolved): string | undefined {
    try {
      return trialLoad(this.loadRequest(name, r.hash, r.code, r.sourceDir)).version;
    } catch {
      return undefined;
    }
  }

  private async fail(
    rt: Runtime,
    row: PluginRow,
    r: Resolved | null,
    err: unknown,
    fingerprint: string,
    logged = false,
    version?: string,
  ): Promise<void> {
    const rec = recordError(err);
    const failed: FailedAttempt = { ...rec, version: version ?? row.version, hash: r?.hash ?? null };
    const repeated = rt.lastError?.message === rec.message && rt.failedFingerprint === fingerprint;
    rt.lastError = failed;
    rt.failedFingerprint = fingerprint;
    if (rt.serving === undefined && rt.state === 'unloaded') {
      transition(rt, 'loading', this.o.log, 'attempt');
      transition(rt, 'error', this.o.log, rec.code);
    }
    if (!repeated || logged) {
      const keeps = rt.serving ? `; version ${rt.serving.version} keeps serving` : '';
      this.o.log.error({ plugin: rt.name, code: rec.code }, `plugin ${rt.name} failed: ${rec.message}${keeps}`);
    }
    this.emit('failed', rt.name, rec.code);
    this.emit('change', rt.name);
    await this.publishObserved(rt);
  }

  /**
   * The node that compiled a version from source publishes it once it loaded
   * here: artifact bytes, hash, metadata and endpoints. Writing the row wakes
   * the other nodes, which find nothing to do if they already serve it.
   */
  private async publishDesired(row: PluginRow, loaded: LoadedPlugin, r: Resolved): Promise<void> {
    // Once per row and hash: every write here notifies every node, so a node that re-published on each
    // no-op reconcile would wake its peers forever (two nodes whose sources differ would overwrite each
    // other's hash in a loop). A failed publish is not recorded, so the next reconcile repairs it.
    if (row.artifactHash !== null && this.published.get(row.id) === r.hash) return;
    try {
      const m = loaded.metadata;
      // Endpoints first: whoever sees the row's new version or hash finds its endpoints already there.
      if (r.from !== 'artifact') {
        const want = endpointsOf(loaded);
        const have = (row as Partial<PluginWithEndpoints>).endpoints;
        if (have === undefined || !sameEndpoints(have, want)) await this.o.repo.replaceEndpoints(row.id, want);
      }
      if (r.artifact !== undefined) {
        if (row.artifactHash !== r.hash) {
          await this.o.repo.putArtifact({
            hash: r.hash,
            pluginName: row.name,
            version: m.version,
            format: r.artifact.format,
            bundle: r.artifact.bundle,
          });
        }
        const patch: Partial<PluginRow> = {};
        if (row.artifactHash !== r.hash) patch.artifactHash = r.hash;
        // binary_path is where the publishing node keeps the file: written with a new hash only, or two
        // nodes with different ARTIFACTS_DIR would rewrite it after each other's notification without end
        if (row.artifactHash !== r.hash && row.binaryPath !== r.artifact.path) patch.binaryPath = r.artifact.path;
        if (row.version !== m.version) patch.version = m.version;
        if (row.description !== m.description) patch.description = m.description;
        if (row.author !== m.author) patch.author = m.author;
        if (Object.keys(patch).length > 0) await this.o.repo.update(row.name, patch);
      }
      this.published.set(row.id, r.hash);
    } catch (err) {
      this.o.log.warn({ plugin: row.name, err: describeError(err) }, 'could not publish plugin state to the database');
    }
  }

  /** Writes this node's observed state for one plugin (best effort: the next reconcile rewrites it). */
  private async publishObserved(rt: Runtime): Promise<void> {
    const e = rt.lastError;
    try {
      await this.o.repo.recordNodeState({
        nodeId: this.o.nodeId,
        pluginName: rt.name,
        state: rt.state,
        servingVersion: rt.serving?.version ?? null,
        servingHash: rt.serving?.hash ?? null,
        failedVersion: e?.version ?? null,
        failedHash: e?.hash ?? null,
        lastErrorCode: e?.code ?? null,
        lastError: e?.message ?? null,
        lastErrorAt: e ? new Date(e.at) : null,
      });
    } catch (err) {
      this.o.log.debug({ plugin: rt.name, err: describeError(err) }, 'could not record observed state');
    }
  }

  /** Unloads everything (shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.lanes.idle();
    await Promise.all([...this.runtimes.values()].map((rt) => this.unload(rt, 'shutdown').catch(() => {})));
    // versions replaced just before shutdown run their cleanup too (each bounded by the drain and hook limits)
    await Promise.all([...this.retiring]);
  }
}

interface Resolved {
  hash: string;
  from: 'source' | 'artifact' | 'static';
  code: LoadRequest['code'];
  sourceDir: string | undefined;
  /** Set when this node compiled the artifact from source (and so may publish it). */
  artifact: Artifact | undefined;
}

/** What `artifact_hash` may hold: a content hash, never a path. */
const ARTIFACT_HASH = /^[A-Za-z0-9_-]{1,128}$/;

/** Failures of the plugin's source itself, as opposed to the desired state or the environment. */
const SOURCE_ERRORS = new Set([
  'PH_ERR_COMPILE_SYNTAX',
  'PH_ERR_COMPILE_TYPE',
  'PH_ERR_COMPILE_RESOLVE',
  'PH_ERR_PLUGIN_NO_ENTRY',
  'PH_ERR_LOAD_NO_FACTORY',
]);

function isSourceError(err: unknown): boolean {
  return err instanceof HostError && SOURCE_ERRORS.has(err.code);
}

function sourceFingerprint(row: PluginRow, pluginsDir: string): string {
  const source = row.sourcePath ?? row.path;
  if (source === null) return '';
  const dir = resolveInside(pluginsDir, source);
  if (dir === undefined) return '';
  try {
    return hashSource(dir);
  } catch {
    return '';
  }
}

function sameEndpoints(have: ReadonlyArray<EndpointInput>, want: ReadonlyArray<EndpointInput>): boolean {
  const key = (e: EndpointInput) => `${e.method} ${e.path} ${e.handler ?? ''} ${e.type ?? 'REST'}`;
  const a = new Set(have.map(key));
  return a.size === want.length && want.every((e) => a.has(key(e)));
}

function endpointsOf(p: LoadedPlugin): EndpointInput[] {
  const declared = p.metadata.endpoints ?? [];
  const handlerOf = new Map(declared.map((e) => [`${e.method} ${e.path}`, e]));
  const out = new Map<string, EndpointInput>();
  for (const e of declared)
    out.set(`${e.method} ${e.path}`, { method: e.method, path: e.path, handler: e.handler ?? '', type: e.type ?? 'REST' });
  for (const r of p.routes) {
    const key = `${r.method} ${r.url}`;
    if (r.method === 'HEAD' && !handlerOf.has(key)) continue; // Fastify's automatic HEAD twins
    if (!out.has(key)) out.set(key, { method: r.method, path: r.url, handler: '', type: 'REST' });
  }
  return [...out.values()];
}
