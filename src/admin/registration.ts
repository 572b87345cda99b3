import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactStore } from '../artifacts/index.js';
import type { PluginCompiler } from '../compiler/index.js';
import type { PluginRepository, PluginRow } from '../db/index.js';
import { discover } from '../discovery/index.js';
import { isHostError, type RecordedError, recordError } from '../errors/index.js';
import type { RecordedMetadata } from '../manager/configs.js';
import { endpointRecord, type PluginStatus } from '../model/index.js';
import type { Runtimes } from '../runtime/index.js';
import type { PluginFactory } from '../sdk/index.js';
import type { SourceArchives } from '../uploads/index.js';
import { type Proven, prove } from './publish.js';

export interface RegistrationOptions {
  repo: PluginRepository;
  compiler: PluginCompiler;
  artifacts: ArtifactStore;
  /** The runtimes by isolation mode: a version is proven in the runtime it will run in. */
  runtimes: Runtimes;
  pluginsDir: string;
  hookTimeoutMs: number;
  log: FastifyBaseLogger;
  staticPlugins?: ReadonlyMap<string, PluginFactory>;
  /** Source archives of uploaded plugins; without it, uploads are refused. */
  sources?: SourceArchives;
  /** The metadata recorded with each published version (a configuration's schema is read from it). */
  recordedMetadata?: RecordedMetadata;
}

export type DiscoveryError = RecordedError & { source_path: string };

/** Directories discovery registers at once. */
const REGISTER_CONCURRENCY = 8;

/** `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
async function inBatches<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Writes the desired state of plugins the database does not know yet: the
 * directories discovery finds, a directory registered through the API, and
 * the static plugins compiled into the host. Each is proven (compiled and
 * trial-loaded) before its row is written; a directory that fails is reported
 * in `discoveryErrors`, not registered.
 */
export class Registration extends EventEmitter<{ change: [name: string] }> {
  /** Directories found by discovery that could not be registered, by name. */
  readonly discoveryErrors = new Map<string, DiscoveryError>();

  constructor(private readonly o: RegistrationOptions) {
    super();
  }

  /** Scans the plugins directory and registers each valid plugin the database does not know yet. */
  async discoverAndRegister(): Promise<{ registered: string[]; failed: string[]; removed: string[] }> {
    const registered: string[] = [];
    const failed: string[] = [];
    // A plugin an operator removed stays removed: discovery never registers it again.
    const removals = new Set((await this.o.repo.removals()).map((r) => r.name));
    const all = await discover(this.o.pluginsDir);
    const removed = all.filter((d) => removals.has(d.name)).map((d) => d.name);
    const found = all.filter((d) => !removals.has(d.name));
    for (const name of removals) this.discoveryErrors.delete(name);
    // Registered already: left to the reconcile (a row written meanwhile is caught by insertIfAbsent below).
    const registeredNames = await this.o.repo.names();
    // One type-check program for every new plugin found, instead of one per plugin.
    await this.o.compiler.prepare(found.filter((d) => d.problem === undefined && !registeredNames.has(d.name)).map((d) => d.dir));
    const todo: typeof found = [];
    for (const d of found) {
      if (d.problem !== undefined) {
        this.noteDiscoveryError(d.name, d.dir, d.problem);
        failed.push(d.name);
      } else if (registeredNames.has(d.name)) {
        this.discoveryErrors.delete(d.name);
      } else {
        todo.push(d);
      }
    }
    // Directories found together are registered a few at a time (each waits mostly on its commits), with one
    // registration time: of two that claim a route, the first by name keeps it, as when they were registered
    // one after the other in name order.
    const registeredAt = new Date();
    // Every directory is proved at once (bundles and trial loads on this thread while the batch is type-checked
    // in the checker's), then registered a few at a time as their proofs complete.
    const proving = todo.map((d) => {
      const proven = this.prove(d.name, d.dir);
      proven.catch(() => undefined); // awaited below
      return { d, proven };
    });
    const outcomes = await inBatches(proving, REGISTER_CONCURRENCY, async ({ d, proven }) => {
      try {
        return await this.registerDirectory(d.name, d.dir, { explicit: false, registeredAt, proven });
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    });
    let unavailable: Error | undefined;
    todo.forEach((d, i) => {
      const r = outcomes[i] as Awaited<ReturnType<Registration['registerDirectory']>> | Error;
      if (r instanceof Error) {
        if (isHostError(r, 'PH_ERR_DB_UNAVAILABLE')) unavailable ??= r;
        else {
          this.noteDiscoveryError(d.name, d.dir, r);
          failed.push(d.name);
        }
        return;
      }
      if (r.created) registered.push(d.name);
      if (r.removed) removed.push(d.name);
    });
    if (unavailable !== undefined) throw unavailable;
    return { registered, failed, removed };
  }

  /**
   * Proves and registers one plugin directory. `created` is false when a row of that name appeared
   * meanwhile, or (`explicit: false`, discovery) when an operator removed the name (`removed`); an
   * explicit registration forgets a removal.
   */
  async registerDirectory(
    name: string,
    dir: string,
    opts: { status?: PluginStatus; explicit: boolean; registeredAt?: Date; proven?: Promise<Proven> },
  ): Promise<{ row: PluginRow | undefined; created: boolean; removed: boolean }> {
    const { artifact, metadata } = await (opts.proven ?? this.prove(name, dir));
    // the artifact, its history entry and the row in one statement
    const res = await this.o.artifacts.publishAndRegister(
      {
        hash: artifact.hash,
        pluginName: name,
        version: metadata.version,
        format: artifact.format,
        bundle: artifact.bundle,
        history: { action: opts.explicit ? 'register' : 'discovery', metadata },
      },
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
        status: opts.status ?? 'active',
        ...(opts.registeredAt === undefined ? {} : { createdAt: opts.registeredAt }),
      },
      (metadata.endpoints ?? []).map(endpointRecord),
      { unlessRemoved: !opts.explicit },
    );
    this.discoveryErrors.delete(name);
    if (res.created) this.o.log.info({ plugin: name, version: metadata.version, hash: artifact.hash }, `registered plugin ${name}`);
    return res;
  }

  /** A new directory runs in the default mode: it is proved there (a worker plugin's module code never runs in the serving thread). */
  private prove(name: string, dir: string): Promise<Proven> {
    return prove({ ...this.o, runtime: this.o.runtimes.get(this.o.runtimes.defaultMode) }, name, dir);
  }

  /** Registers static plugins (compiled into the host) that the database does not know yet. */
  async registerStatic(): Promise<void> {
    for (const [name, factory] of this.o.staticPlugins ?? []) {
      const metadata = await this.o.runtimes.get('inline').trial({
        name,
        hash: 'static',
        code: { kind: 'static', factory },
        sourceDir: undefined,
        log: this.o.log.child({ plugin: name }),
        hookTimeoutMs: this.o.hookTimeoutMs,
        config: {},
      });
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
}
