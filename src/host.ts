import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { PluginAdmin, removeServerInfo, writeServerInfo } from './admin/index.js';
import { ArtifactStore } from './artifacts/index.js';
import { Compiler } from './compiler/index.js';
import { type HostConfig, PROJECT_ROOT, scrubSecrets } from './config/index.js';
import { reduceEnvironment } from './config/plugin-env.js';
import { type SecretEnvironment, withSecretsDir } from './config/plugins/index.js';
import { ClusterWatch, ConsoleFeed, consoleRoutes, ErrorHistory } from './console/index.js';
import { type Database, openDatabase, PluginRepository, ReleaseRepository } from './db/index.js';
import { describeError } from './errors/index.js';
import { ChangeFollower } from './events/index.js';
import {
  adminRoutes,
  clientErrorHandler,
  clusterRoutes,
  type DescribedRoute,
  eventsRoutes,
  frameworkErrors,
  HostMetrics,
  healthRoutes,
  hostErrorHandler,
  installHttpHardening,
  LazySchemaCompilers,
  metricsRoutes,
  OpenApiDocument,
  openapiRoutes,
  pluginsRoutes,
  releaseReadRoutes,
} from './http/index.js';
import { Janitor } from './janitor/index.js';
import { createLogger } from './logger.js';
import { PluginManager, type RecordedMetadata } from './manager/index.js';
import { CanaryWatch, Releases, RolloutDecisions } from './releases/index.js';
import { Dispatcher, HostPaths } from './routing/index.js';
import { type Runtimes, runtimesFor, usePluginScopes, WorkerRuntime } from './runtime/index.js';
import type { PluginFactory, PluginMetadata } from './sdk/index.js';
import { SourceArchives } from './uploads/index.js';
import { PluginWatcher } from './watch/index.js';

export interface HostOptions {
  /** Plugins compiled into the host (type `static`). */
  staticPlugins?: ReadonlyMap<string, PluginFactory>;
  logger?: FastifyBaseLogger;
  /** Heartbeat period of this node in the nodes table. */
  heartbeatMs?: number;
  /** How plugin code runs (default: the inline and worker runtimes, as the configuration sets them). */
  runtimes?: Runtimes;
  /**
   * Where plugins' secret references (`{"$env": "NAME"}`) resolve. Default: a
   * copy of `process.env` taken at start, before the host removed its own
   * secrets from it (which no reference may name).
   */
  environment?: SecretEnvironment;
}

/**
 * The composition root: wires config, database, compiler, manager, dispatcher
 * and HTTP routes. `start()` migrates, discovers, loads every active plugin,
 * subscribes to changes and listens; `close()` undoes it in reverse order.
 */
export class Host {
  readonly log: FastifyBaseLogger;
  readonly dispatcher = new Dispatcher();
  app!: FastifyInstance;
  db!: Database;
  repo!: PluginRepository;
  manager!: PluginManager;
  compiler!: Compiler;
  artifacts!: ArtifactStore;
  runtimes!: Runtimes;
  admin!: PluginAdmin;
  /** Version history, rollbacks and staged rollouts. */
  releases!: Releases;
  metrics!: HostMetrics;
  openapi!: OpenApiDocument;
  janitor: Janitor | undefined;
  /** What the console's event stream carries: change notifications and this node's observed-state changes. */
  feed!: ConsoleFeed;
  /** Errors this node has seen per plugin, for the console's detail view. */
  errorHistory!: ErrorHistory;
  private clusterWatch: ClusterWatch | undefined;
  /** Set when started with WATCH=1 / --watch. */
  watcher: PluginWatcher | undefined;
  private follower: ChangeFollower | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private initialLoadDone = false;
  /** Set once start() asks for the first full reconcile: resyncs before it are covered by it. */
  private firstRoundAsked = false;
  private closing: Promise<void> | undefined;
  private readonly startAbort = new AbortController();
  /** URL patterns of every route the host registers on its own Fastify instance. */
  private readonly hostRoutes: DescribedRoute[] = [];
  /** The host routes' validators and serializers, compiled on first use (tests compile them all). */
  readonly schemas = new LazySchemaCompilers();

  constructor(
    readonly config: HostConfig,
    private readonly options: HostOptions = {},
  ) {
    this.log = options.logger ?? createLogger(config.logLevel);
  }

  get url(): string {
    const a = this.app.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  get address(): string {
    const a = this.app.server.address() as AddressInfo | null;
    return a === null ? '' : `${this.config.host}:${a.port}`;
  }

  /** A node whose heartbeat is older than this is not live (not shown, what it serves not kept). */
  get liveWithinMs(): number {
    return Math.max(15_000, (this.options.heartbeatMs ?? 5000) * 3);
  }

  get ready(): boolean {
    return this.initialLoadDone;
  }

  async start(): Promise<this> {
    const c = this.config;
    // Plugin secret references resolve from the environment the process was given, not from what plugin
    // code may later write into process.env; the host's own secrets in it are refused by name.
    const environment = withSecretsDir(Object.freeze(this.options.environment ?? { ...process.env }), c.secretsDir);
    // The secrets are in `config` now: nothing of them stays where plugin code could read it.
    scrubSecrets(process.env);
    // Nor does anything else off the allow-list: a variable one plugin's `$env` names is that plugin's alone.
    const removed = reduceEnvironment(process.env, c.pluginEnvAllow).length;
    usePluginScopes(c.pluginFaultScope);
    if (removed > 0) this.log.info(`${removed} environment variable(s) not on PLUGIN_ENV_ALLOW removed from process.env`);
    this.compiler = new Compiler({
      artifactsDir: c.artifactsDir,
      pluginsDir: c.pluginsDir,
      typecheck: c.typecheck,
      checkInWorker: true,
      checkTimeoutMs: c.typecheckTimeoutMs,
      checkMemoryMb: c.typecheckMemoryMb,
      // an artifact file found in the cache is used only if it matches the digest the store recorded
      trustCache: (plugin, artifact) => this.artifacts.trustLocal(plugin, artifact),
    });
    if (c.discover) this.compiler.warmUpIfFirstStart();
    this.db = await openDatabase({
      databaseUrl: c.databaseUrl,
      password: c.databasePassword,
      dataDir: c.dataDir,
      signal: this.startAbort.signal,
      onRetry: (attempt, delay, err) =>
        this.log.warn({ attempt, retryInMs: delay }, `database not reachable (${describeError(err)}); retrying in ${delay} ms`),
      onMigrated: (applied) => {
        if (applied.length > 0) this.log.info({ migrations: applied }, `applied migrations ${applied.join(', ')}`);
      },
    });
    this.repo = new PluginRepository(this.db.orm);
    this.artifacts = new ArtifactStore(c.artifactsDir, this.repo, this.log, c.nodeId);
    // a kill in the middle of a write leaves a temporary file; nothing else would collect it before the janitor's first round
    const leftovers = this.artifacts.files.removeLeftovers();
    if (leftovers.length > 0)
      this.log.info({ files: leftovers }, `removed ${leftovers.length} temporary artifact file(s) a stopped writer left`);
    this.runtimes = this.options.runtimes ?? runtimesFor(c);
    const releaseRepo = new ReleaseRepository(this.db.orm);
    const decisions = new RolloutDecisions(this.log);
    const canary = new CanaryWatch({
      nodeId: c.nodeId,
      releases: releaseRepo,
      decisions,
      log: this.log,
      checkIntervalMs: c.rolloutCheckIntervalMs,
      healthTimeoutMs: Math.min(c.hookTimeoutMs, 2000),
      max5xxPercent: c.rollout5xxPercent,
      minRequests: c.rolloutMinRequests,
    });
    const recordedMetadata: RecordedMetadata = {
      one: async (name, hash) => (await releaseRepo.findVersion(name, { hash }))?.metadata as PluginMetadata | undefined,
      many: async (versions) => (await releaseRepo.metadataOf(versions)) as Map<string, PluginMetadata>,
    };
    const staticPlugins = this.options.staticPlugins ? { staticPlugins: this.options.staticPlugins } : {};
    const sources = new SourceArchives({
      repo: this.repo,
      root: path.join(c.dataDir, 'sources'),
      limits: { maxEntries: c.uploadMaxEntries, maxBytes: c.uploadMaxUnpackedBytes },
    });
    this.manager = new PluginManager({
      nodeId: c.nodeId,
      pluginsDir: c.pluginsDir,
      hookTimeoutMs: c.hookTimeoutMs,
      drainTimeoutMs: c.drainTimeoutMs,
      repo: this.repo,
      compiler: this.compiler,
      artifacts: this.artifacts,
      runtimes: this.runtimes,
      dispatcher: this.dispatcher,
      log: this.log,
      environment,
      recordedMetadata,
      canary,
      sources,
      ...staticPlugins,
    });
    this.admin = new PluginAdmin({
      repo: this.repo,
      compiler: this.compiler,
      artifacts: this.artifacts,
      runtimes: this.runtimes,
      pluginsDir: c.pluginsDir,
      hookTimeoutMs: c.hookTimeoutMs,
      log: this.log,
      sources,
      recordedMetadata,
      ...staticPlugins,
    });
    this.releases = new Releases({
      repo: this.repo,
      releases: releaseRepo,
      admin: this.admin,
      decisions,
      log: this.log,
      bakeMs: c.rolloutBakeMs,
      liveWithinMs: this.liveWithinMs,
    });
    this.errorHistory = new ErrorHistory(this.manager, this.admin);
    this.feed = new ConsoleFeed({ manager: this.manager, admin: this.admin });
    const workers = this.runtimes.get('worker');
    this.metrics = new HostMetrics({
      manager: this.manager,
      dispatcher: this.dispatcher,
      repo: this.repo,
      defaultMetrics: true,
      workers: workers instanceof WorkerRuntime ? workers : undefined,
      decisions,
    });
    this.app = this.buildApp();
    await this.app.ready();
    // Every route of the host is registered now: from here on its paths are the host's, before any plugin loads.
    this.dispatcher.setHostPaths(HostPaths.fromRoutes(this.hostRoutes.map((r) => r.url)));
    this.dispatcher.allowRouteOverlap(c.routeOverlapAllow);

    await this.repo.registerNode(c.nodeId, '', process.pid);
    await this.admin.registerStatic();
    if (c.discover) await this.admin.discoverAndRegister();

    // Subscribe first, then load: a change committed between the two is seen by the full reconcile.
    this.follower = new ChangeFollower({
      db: this.db,
      log: this.log,
      intervalMs: c.reconcileIntervalMs,
      onChange: (name, change) => {
        void this.manager.reconcile(name);
        this.feed.desired(change);
      },
      onResync: () => {
        // The first LISTEN's resync is the full reconcile just below (it reads after LISTEN is up, so it misses
        // nothing): a second one racing it would re-read and re-resolve every plugin at start for nothing.
        if (!this.firstRoundAsked) return;
        void this.manager.reconcileAll();
        this.feed.resync();
      },
    });
    await this.follower.start();
    this.firstRoundAsked = true;
    await this.manager.reconcileAll();
    await this.manager.idle();
    this.initialLoadDone = true;

    if (c.watch) {
      this.watcher = new PluginWatcher({
        pluginsDir: c.pluginsDir,
        repo: this.repo,
        admin: this.admin,
        manager: this.manager,
        debounceMs: c.watchDebounceMs,
        log: this.log,
      }).start();
    }

    await this.app.listen({ port: c.port, host: c.host });
    if (this.db.kind === 'pglite') {
      // The embedded database is locked by this process: tell the CLI where to reach this server instead.
      writeServerInfo(c.dataDir, { pid: process.pid, url: this.url, nodeId: c.nodeId, startedAt: new Date().toISOString() });
    }
    await this.repo.registerNode(c.nodeId, this.address, process.pid).catch(() => {});
    this.heartbeat = setInterval(() => {
      this.repo.heartbeat(c.nodeId, this.address, process.pid).catch(() => {});
    }, this.options.heartbeatMs ?? 5000);
    this.heartbeat.unref();
    this.janitor = new Janitor({
      repo: this.repo,
      versions: releaseRepo,
      versionsKept: c.versionsKept,
      files: this.artifacts.files,
      log: this.log,
      artifactRetentionMs: c.artifactRetentionMs,
      nodeRetentionMs: c.nodeRetentionMs,
      liveWithinMs: this.liveWithinMs,
      intervalMs: JANITOR_INTERVAL_MS,
    }).start();
    this.clusterWatch = new ClusterWatch({
      db: this.db,
      feed: this.feed,
      nodeId: c.nodeId,
      liveWithinMs: this.liveWithinMs,
      log: this.log,
    }).start();
    this.log.info({ url: this.url, nodeId: c.nodeId, database: this.db.kind }, `plugin-host listening on ${this.url}`);
    return this;
  }

  private buildApp(): FastifyInstance {
    const app = Fastify({
      loggerInstance: this.log,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 1024 * 1024,
      routerOptions: { maxParamLength: 200 },
      schemaController: { compilersFactory: this.schemas.factories() },
      forceCloseConnections: 'idle',
      clientErrorHandler,
      frameworkErrors,
      serverFactory: (handler, opts) => {
        const c = this.config;
        const server = http.createServer(
          {
            maxHeaderSize: 16 * 1024,
            // a client that sends its headers or body slowly is answered 408 and cut off, not kept forever
            requestTimeout: c.requestTimeoutMs,
            headersTimeout: c.headersTimeoutMs,
            // how often those deadlines are checked (Node's default, 30 s, would let a slow client linger that long)
            connectionsCheckingInterval: Math.max(250, Math.min(2000, Math.floor(c.headersTimeoutMs / 2))),
          },
          this.dispatcher.handler(handler),
        );
        // Fastify applies this only to servers it creates itself: keep its default for ours
        server.keepAliveTimeout = Number(opts.keepAliveTimeout ?? 72_000);
        return server;
      },
    });
    app.setErrorHandler(hostErrorHandler);
    app.addHook('onRoute', (route) => {
      this.hostRoutes.push({ method: route.method, url: route.url, schema: route.schema });
    });
    installHttpHardening(app);
    const liveWithinMs = this.liveWithinMs;
    app.register(pluginsRoutes, {
      repo: this.repo,
      manager: this.manager,
      discoveryErrors: this.admin.discoveryErrors,
      nodeId: this.config.nodeId,
      hookTimeoutMs: this.config.hookTimeoutMs,
      liveWithinMs,
    });
    app.register(healthRoutes, { reasons: () => this.notReadyReasons() });
    app.register(adminRoutes, {
      token: this.config.adminToken,
      admin: this.admin,
      repo: this.repo,
      manager: this.manager,
      nodeId: this.config.nodeId,
      liveWithinMs,
      uploadLimitBytes: this.config.uploadLimitBytes,
      settleTimeoutMs: this.config.drainTimeoutMs + 4 * this.config.hookTimeoutMs + 5000,
      releases: this.releases,
      schemas: this.schemas,
    });
    app.register(releaseReadRoutes, { releases: this.releases, liveWithinMs });
    app.register(metricsRoutes, { metrics: this.metrics });
    app.register(clusterRoutes, {
      repo: this.repo,
      manager: this.manager,
      history: this.errorHistory,
      discoveryErrors: this.admin.discoveryErrors,
      nodeId: this.config.nodeId,
      liveWithinMs,
    });
    app.register(eventsRoutes, { feed: this.feed, nodeId: this.config.nodeId });
    app.register(consoleRoutes, { nodeId: this.config.nodeId, version: hostVersion() });
    this.openapi = new OpenApiDocument(this.hostRoutes, hostVersion(), this.dispatcher, this.manager, this.log);
    app.register(openapiRoutes, { document: this.openapi });
    return app;
  }

  /**
   * An uncaught exception or unhandled rejection that no plugin's scope
   * explains: already logged at fatal and counted in the metrics. It does not
   * make the node unready: a plugin could otherwise raise one where the host
   * cannot see whose it is and take every node's readiness for good.
   */
  noteHostFault(_reason: string): void {}

  async notReadyReasons(): Promise<string[]> {
    const reasons: string[] = [];
    if (!this.initialLoadDone) reasons.push('initial load not done');
    if (!(this.follower?.connected ?? false)) reasons.push('change listener not connected');
    try {
      await Promise.race([this.db.ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000).unref())]);
    } catch (err) {
      reasons.push(`database unreachable: ${describeError(err)}`);
    }
    return reasons;
  }

  /** Graceful stop: stop accepting, drain (bounded), unload every plugin (bounded), close listener and pool. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.startAbort.abort();
      clearInterval(this.heartbeat);
      await this.janitor?.stop().catch(() => {});
      await this.watcher?.stop().catch(() => {});
      if (this.db?.kind === 'pglite') removeServerInfo(this.config.dataDir);
      // open event streams would keep the server from closing: end them (pages reconnect and resync)
      this.clusterWatch?.stop();
      this.feed?.close();
      this.errorHistory?.close();
      if (this.app !== undefined) {
        this.dispatcher.startDraining();
        const closed = this.app.close();
        const bounded = await Promise.race([closed.then(() => true), delay(this.config.drainTimeoutMs).then(() => false)]);
        if (!bounded) this.app.server.closeAllConnections();
      }
      await this.follower?.stop().catch(() => {});
      await this.manager?.stop().catch(() => {});
      await this.repo?.removeNode(this.config.nodeId).catch(() => {});
      await this.db?.close().catch(() => {});
      await this.compiler?.close().catch(() => {});
      await this.runtimes?.close().catch(() => {});
      this.openapi?.close();
      this.metrics?.close();
    })();
    return this.closing;
  }
}

/** How often unreferenced artifacts and dead nodes' rows are collected. */
const JANITOR_INTERVAL_MS = 10 * 60_000;

function hostVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export async function startHost(config: HostConfig, options?: HostOptions): Promise<Host> {
  const host = new Host(config, options);
  try {
    return await host.start();
  } catch (err) {
    await host.close().catch(() => {});
    throw err;
  }
}
