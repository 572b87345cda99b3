import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { removeServerInfo, writeServerInfo } from './admin/index.js';
import { type Core, startCore } from './assembly/core.js';
import { changeFollower } from './assembly/follower.js';
import { Parts } from './assembly/parts.js';
import { buildPlanes, closePlanes, listenPlanes, type Planes, urlOf } from './assembly/planes.js';
import { type DerivedSettings, deriveSettings, type HostConfig, JANITOR_INTERVAL_MS, PROJECT_ROOT, scrubSecrets } from './config/index.js';
import { reduceEnvironment } from './config/plugin-env.js';
import { type SecretEnvironment, withSecretsDir } from './config/plugins/index.js';
import { ClusterWatch } from './console/index.js';
import { describeError } from './errors/index.js';
import type { ChangeFollower } from './events/index.js';
import { LazySchemaCompilers } from './http/index.js';
import { Janitor } from './janitor/index.js';
import { createLogger } from './logger.js';
import { Dispatcher } from './routing/index.js';
import { type Runtimes, usePluginScopes } from './runtime/index.js';
import type { PluginFactory } from './sdk/index.js';
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
 * The composition root: a list of parts started in order (`startCore`, then the
 * listeners, the change follower, the first load, the background rounds), each
 * recorded with how to undo it; `close()` runs the undos last-in, first-out.
 */
export class Host {
  readonly log: FastifyBaseLogger;
  readonly dispatcher = new Dispatcher();
  /** The host routes' validators and serializers, compiled on first use (tests compile them all). */
  readonly schemas = new LazySchemaCompilers();
  readonly derived: DerivedSettings;
  private core: Core | undefined;
  private planes: Planes | undefined;
  /** Set when started with WATCH=1 / --watch. */
  watcher: PluginWatcher | undefined;
  janitor: Janitor | undefined;
  private follower: ChangeFollower | undefined;
  private initialLoadDone = false;
  /** Set once start() asks for the first full reconcile: resyncs before it are covered by it. */
  private firstRoundAsked = false;
  private readonly parts: Parts;
  private closing: Promise<void> | undefined;
  private readonly startAbort = new AbortController();

  constructor(
    readonly config: HostConfig,
    private readonly options: HostOptions = {},
  ) {
    this.log = options.logger ?? createLogger(config.logLevel);
    this.derived = deriveSettings(config, options.heartbeatMs);
    this.parts = new Parts((part, err) => this.log.warn({ part }, `closing ${part} failed: ${describeError(err)}`));
  }

  private get started(): Core {
    if (this.core === undefined) throw new Error('the host is not started');
    return this.core;
  }
  get db() {
    return this.started.db;
  }
  get repo() {
    return this.started.repo;
  }
  get manager() {
    return this.started.manager;
  }
  get admin() {
    return this.started.admin;
  }
  get releases() {
    return this.started.releases;
  }
  /** Scoped tokens, the control plane's guard and the audit trail. */
  get access() {
    return this.started.access;
  }

  /** The data plane: plugin routes and the public reads. */
  get url(): string {
    return urlOf((this.planes as Planes).data);
  }

  /** The control plane: console, admin API, event feed, metrics. */
  get adminUrl(): string {
    return urlOf((this.planes as Planes).control);
  }

  /** Where other nodes see this one (its data plane). */
  get address(): string {
    const a = this.planes?.data.server.address();
    return a === null || a === undefined || typeof a === 'string' ? '' : `${this.config.host}:${a.port}`;
  }

  get liveWithinMs(): number {
    return this.derived.liveWithinMs;
  }

  get ready(): boolean {
    return this.initialLoadDone;
  }

  async start(): Promise<this> {
    const c = this.config;
    const parts = this.parts;
    // Plugin secret references resolve from the environment the process was given, not from what plugin
    // code may later write into process.env; the host's own secrets in it are refused by name.
    const environment = withSecretsDir(Object.freeze(this.options.environment ?? { ...process.env }), c.secretsDir);
    // The secrets are in `config` now: nothing of them stays where plugin code could read it.
    scrubSecrets(process.env);
    // Nor does anything else off the allow-list: a variable one plugin's `$env` names is that plugin's alone.
    const removed = reduceEnvironment(process.env, c.pluginEnvAllow).length;
    usePluginScopes(c.pluginFaultScope);
    if (removed > 0) this.log.info(`${removed} environment variable(s) not on PLUGIN_ENV_ALLOW removed from process.env`);
    const core = await startCore(parts, {
      config: c,
      derived: this.derived,
      log: this.log,
      dispatcher: this.dispatcher,
      environment,
      staticPlugins: this.options.staticPlugins,
      runtimes: this.options.runtimes,
      signal: this.startAbort.signal,
    });
    this.core = core;
    const planes = await buildPlanes({
      config: c,
      derived: this.derived,
      log: this.log,
      core,
      dispatcher: this.dispatcher,
      schemas: this.schemas,
      version: hostVersion(),
      reasons: () => this.notReadyReasons(),
    });
    this.planes = parts.add('listeners', planes, (p) => closePlanes(p, this.dispatcher, c.drainTimeoutMs));
    for (const d of planes.documents) parts.add('openapi', d, (x) => x.close());

    await core.admin.registerStatic();
    if (c.discover) await core.admin.discoverAndRegister();
    // Subscribe first, then load: a change committed between the two is seen by the full reconcile.
    const follower = changeFollower(core, this.log, c.reconcileIntervalMs, () => this.firstRoundAsked);
    this.follower = parts.add('change follower', follower, (f) => f.stop());
    await this.follower.start();
    this.firstRoundAsked = true;
    await core.manager.reconcileAll();
    await core.manager.idle();
    this.initialLoadDone = true;

    if (c.watch) {
      const w = new PluginWatcher({ ...core, pluginsDir: c.pluginsDir, debounceMs: c.watchDebounceMs, log: this.log });
      this.watcher = parts.add('watcher', w.start(), (x) => x.stop());
    }
    await listenPlanes(planes, c);
    if (core.db.kind === 'pglite') {
      // The embedded database is locked by this process: tell the CLI where to reach this server's control plane.
      const info = { pid: process.pid, url: this.adminUrl, dataUrl: this.url, nodeId: c.nodeId, startedAt: new Date().toISOString() };
      parts.add('server info', writeServerInfo(c.dataDir, info), () => removeServerInfo(c.dataDir));
    }
    await core.repo.nodes.register(c.nodeId, this.address, process.pid).catch(() => {});
    const beat = () => core.repo.nodes.heartbeat(c.nodeId, this.address, process.pid).catch(() => {});
    parts.add('heartbeat', setInterval(beat, this.derived.heartbeatMs).unref(), clearInterval);
    const live = { liveWithinMs: this.derived.liveWithinMs, log: this.log, nodeId: c.nodeId };
    const janitor = new Janitor({
      ...live,
      repo: core.repo,
      versions: core.releaseRepo,
      versionsKept: c.versionsKept,
      files: core.artifacts.files,
      artifactRetentionMs: c.artifactRetentionMs,
      nodeRetentionMs: c.nodeRetentionMs,
      intervalMs: JANITOR_INTERVAL_MS,
    });
    this.janitor = parts.add('janitor', janitor.start(), (j) => j.stop());
    parts.add('cluster watch', new ClusterWatch({ ...live, db: core.db, feed: core.feed }).start(), (w) => w.stop());
    // open event streams would keep the listeners from closing: the first thing closed ends them (pages reconnect)
    parts.add('event streams', core.feed, (f) => f.close());
    this.log.info(
      { url: this.url, adminUrl: this.adminUrl, nodeId: c.nodeId, database: core.db.kind },
      `plugin-host listening on ${this.url} (control plane ${this.adminUrl})`,
    );
    return this;
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
      const ping = this.core?.db.ping() ?? Promise.reject(new Error('not open'));
      await Promise.race([ping, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 1000).unref())]);
    } catch (err) {
      reasons.push(`database unreachable: ${describeError(err)}`);
    }
    return reasons;
  }

  /** Graceful stop: every started part closed in the reverse order (listeners drain, bounded, before plugins unload). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.startAbort.abort();
      await this.parts.close();
    })();
    return this.closing;
  }
}

function hostVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
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
