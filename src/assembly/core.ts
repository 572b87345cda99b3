import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { PluginAdmin } from '../admin/index.js';
import { ArtifactStore } from '../artifacts/index.js';
import { Compiler } from '../compiler/index.js';
import type { DerivedSettings, HostConfig } from '../config/index.js';
import type { SecretEnvironment } from '../config/plugins/index.js';
import { ConsoleFeed, ErrorHistory } from '../console/index.js';
import { type Database, openDatabase, PluginRepository, ReleaseRepository } from '../db/index.js';
import { describeError } from '../errors/index.js';
import { HostMetrics } from '../http/index.js';
import { PluginManager, type RecordedMetadata } from '../manager/index.js';
import { CanaryWatch, Releases, RolloutDecisions } from '../releases/index.js';
import type { Dispatcher } from '../routing/index.js';
import { type Runtimes, runtimesFor, WorkerRuntime } from '../runtime/index.js';
import type { PluginFactory, PluginMetadata } from '../sdk/index.js';
import { AccessControl } from '../tokens/index.js';
import { SourceArchives } from '../uploads/index.js';
import type { Parts } from './parts.js';

/** What the host is made of below its listeners: the database, the compiler, the manager and what reads them. */
export interface Core {
  db: Database;
  repo: PluginRepository;
  releaseRepo: ReleaseRepository;
  compiler: Compiler;
  artifacts: ArtifactStore;
  runtimes: Runtimes;
  manager: PluginManager;
  admin: PluginAdmin;
  /** Version history, rollbacks and staged rollouts. */
  releases: Releases;
  metrics: HostMetrics;
  /** What the console's event stream carries: change notifications and this node's observed-state changes. */
  feed: ConsoleFeed;
  /** Errors this node has seen per plugin, for the console's detail view. */
  errorHistory: ErrorHistory;
  /** Scoped tokens, the control plane's guard and the audit trail. */
  access: AccessControl;
}

export interface CoreOptions {
  config: HostConfig;
  derived: DerivedSettings;
  log: FastifyBaseLogger;
  dispatcher: Dispatcher;
  environment: SecretEnvironment;
  staticPlugins: ReadonlyMap<string, PluginFactory> | undefined;
  runtimes: Runtimes | undefined;
  /** Aborted when the host closes during its start (stops the database's connection retries). */
  signal: AbortSignal;
}

/** Opens the database and builds every service on it, each added to `parts` as it starts. */
export async function startCore(parts: Parts, o: CoreOptions): Promise<Core> {
  const { config: c, log } = o;
  let artifacts: ArtifactStore | undefined;
  const compiler = parts.add(
    'compiler',
    new Compiler({
      artifactsDir: c.artifactsDir,
      pluginsDir: c.pluginsDir,
      typecheck: c.typecheck,
      checkInWorker: true,
      checkTimeoutMs: c.typecheckTimeoutMs,
      checkMemoryMb: c.typecheckMemoryMb,
      // an artifact file found in the cache is used only if it matches the digest the store recorded
      trustCache: (plugin, artifact) => artifacts?.trustLocal(plugin, artifact) ?? Promise.resolve(false),
    }),
    (x) => x.close(),
  );
  if (c.discover) compiler.warmUpIfFirstStart();
  const db = parts.add(
    'database',
    await openDatabase({
      databaseUrl: c.databaseUrl,
      password: c.databasePassword,
      dataDir: c.dataDir,
      signal: o.signal,
      onRetry: (attempt, delay, err) =>
        log.warn({ attempt, retryInMs: delay }, `database not reachable (${describeError(err)}); retrying in ${delay} ms`),
      onMigrated: (applied) => {
        if (applied.length > 0) log.info({ migrations: applied }, `applied migrations ${applied.join(', ')}`);
      },
    }),
    (x) => x.close(),
  );
  const repo = new PluginRepository(db.orm);
  const access = parts.add('access control', await AccessControl.open(db, c, log), (x) => x.close());
  // the node's row goes before what reports into it, and after all of them (observed state hangs from it)
  await parts.add('node row', repo.nodes, (n) => n.remove(c.nodeId)).register(c.nodeId, '', process.pid);
  artifacts = new ArtifactStore(c.artifactsDir, repo, log, c.nodeId);
  // a kill in the middle of a write leaves a temporary file; nothing else would collect it before the janitor's first round
  const leftovers = artifacts.files.removeLeftovers();
  if (leftovers.length > 0) log.info({ files: leftovers }, `removed ${leftovers.length} temporary artifact file(s) a stopped writer left`);
  const runtimes = parts.add('runtimes', o.runtimes ?? runtimesFor(c), (x) => x.close());
  const releaseRepo = new ReleaseRepository(db.orm);
  const decisions = new RolloutDecisions(log);
  const canary = new CanaryWatch({
    nodeId: c.nodeId,
    releases: releaseRepo,
    decisions,
    log,
    checkIntervalMs: c.rolloutCheckIntervalMs,
    healthTimeoutMs: o.derived.canaryHealthTimeoutMs,
    max5xxPercent: c.rollout5xxPercent,
    minRequests: c.rolloutMinRequests,
  });
  const recordedMetadata: RecordedMetadata = {
    one: async (name, hash) => (await releaseRepo.findVersion(name, { hash }))?.metadata as PluginMetadata | undefined,
    many: async (versions) => (await releaseRepo.metadataOf(versions)) as Map<string, PluginMetadata>,
  };
  const staticPlugins = o.staticPlugins ? { staticPlugins: o.staticPlugins } : {};
  const sources = new SourceArchives({
    repo,
    root: path.join(c.dataDir, 'sources'),
    limits: { maxEntries: c.uploadMaxEntries, maxBytes: c.uploadMaxUnpackedBytes },
  });
  const shared = { repo, compiler, artifacts, runtimes, log, sources, recordedMetadata, ...staticPlugins };
  const manager = parts.add(
    'manager',
    new PluginManager({
      ...shared,
      nodeId: c.nodeId,
      pluginsDir: c.pluginsDir,
      hookTimeoutMs: c.hookTimeoutMs,
      drainTimeoutMs: c.drainTimeoutMs,
      dispatcher: o.dispatcher,
      environment: o.environment,
      canary,
    }),
    (x) => x.stop(),
  );
  const admin = new PluginAdmin({ ...shared, pluginsDir: c.pluginsDir, hookTimeoutMs: c.hookTimeoutMs });
  const releases = new Releases({
    repo,
    releases: releaseRepo,
    admin,
    decisions,
    log,
    bakeMs: c.rolloutBakeMs,
    liveWithinMs: o.derived.liveWithinMs,
  });
  const errorHistory = parts.add('error history', new ErrorHistory(manager, admin), (x) => x.close());
  const feed = new ConsoleFeed({ manager, admin });
  const workers = runtimes.get('worker');
  const metrics = parts.add(
    'metrics',
    new HostMetrics({
      manager,
      dispatcher: o.dispatcher,
      repo,
      defaultMetrics: true,
      workers: workers instanceof WorkerRuntime ? workers : undefined,
      decisions,
    }),
    (x) => x.close(),
  );
  return { db, repo, releaseRepo, compiler, artifacts, runtimes, manager, admin, releases, metrics, feed, errorHistory, access };
}
