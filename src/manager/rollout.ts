import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { JsonObject } from '../config/plugins/index.js';
import type { PluginWithEndpoints } from '../db/index.js';
import { isHostError } from '../errors/index.js';
import type { Dispatcher, RouteTable } from '../routing/index.js';
import type { LoadedVersion, LoadRequest, Runtimes } from '../runtime/index.js';
import type { VersionConfigs } from './configs.js';
import type { ObservedState, PluginRecord } from './observed.js';
import type { Resolved, Resolver } from './resolve.js';

export interface RolloutOptions {
  runtimes: Runtimes;
  resolver: Resolver;
  dispatcher: Dispatcher;
  observed: ObservedState;
  configs: VersionConfigs;
  log: FastifyBaseLogger;
  hookTimeoutMs: number;
  drainTimeoutMs: number;
  /** Resolves once every plugin that must enter the route table before `name` has (the first full reconcile's order). */
  admitted(name: string): Promise<void>;
}

/**
 * Blue/green on one node: a new version is loaded beside the serving one,
 * the new route table is built (conflicts found here, before anything
 * changes) and swapped in one assignment; the old version drains, then runs
 * `cleanup`. A failure at any step leaves the old version serving and is
 * recorded. Nothing here decides *what* should serve: the loop does.
 */
export class Rollout {
  /** Replaced versions still draining or running `cleanup`; awaited by `stop()`. */
  private readonly retiring = new Set<Promise<void>>();

  constructor(private readonly o: RolloutOptions) {}

  request(name: string, r: Resolved, config: JsonObject = {}): LoadRequest {
    return {
      name,
      hash: r.hash,
      code: r.code,
      sourceDir: r.sourceDir,
      log: this.o.log.child({ plugin: name }),
      hookTimeoutMs: this.o.hookTimeoutMs,
      config,
    };
  }

  /**
   * The configuration version `r` gets from the row's stored one, or undefined when it cannot have
   * one (a secret this node cannot resolve, values its schema refuses, code that does not evaluate):
   * recorded under `fingerprint`, and whatever served before still serves, with what it had.
   */
  private async configure(rec: PluginRecord, row: PluginWithEndpoints, r: Resolved, fingerprint: string): Promise<JsonObject | undefined> {
    let version: string | undefined;
    try {
      // a version this node has just built was published by nobody yet: no recorded metadata to look up
      const metadata = await this.o.configs.metadataOf(this.request(rec.name, r), r.mode, r.artifact?.built === true);
      version = metadata.version;
      return this.o.configs.prepare(rec.name, metadata, row.config);
    } catch (err) {
      if (isHostError(err, 'PH_ERR_DB_UNAVAILABLE')) throw err;
      this.o.observed.failed(rec, (await checkFailure(r)) ?? err, fingerprint, { version: version ?? row.version, hash: r.hash }, true);
      return undefined;
    }
  }

  /**
   * Loads `r` as the version of `rec`, with the row's configuration, and swaps it in. Returns the
   * version now serving, or undefined when it was refused (the failure is recorded under
   * `fingerprint`, and whatever served before still serves).
   */
  async load(rec: PluginRecord, row: PluginWithEndpoints, r: Resolved, fingerprint: string): Promise<LoadedVersion | undefined> {
    const name = rec.name;
    const t0 = performance.now();
    const config = await this.configure(rec, row, r, fingerprint);
    if (config === undefined) return undefined;
    this.o.observed.begin(rec, `desired ${r.hash}`);
    let next: LoadedVersion;
    try {
      next = await this.o.runtimes.get(r.mode).load(this.request(name, r, config));
    } catch (err) {
      this.o.observed.abort(rec, 'load failed');
      const failure = (await checkFailure(r)) ?? err;
      this.o.observed.failed(rec, failure, fingerprint, { version: (await this.versionOf(name, r)) ?? row.version, hash: r.hash }, true);
      return undefined;
    }
    // A source still being type-checked was loaded meanwhile: it replaces nothing until the check passed.
    const failedCheck = await checkFailure(r);
    if (failedCheck !== undefined) {
      await next.unload(this.o.hookTimeoutMs);
      this.o.observed.abort(rec, 'type check failed');
      this.o.observed.failed(rec, failedCheck, fingerprint, { version: next.version, hash: r.hash }, true);
      return undefined;
    }
    await this.o.admitted(name);
    // Build the new route table before anything changes: a conflict refuses the new version.
    let table: RouteTable;
    try {
      table = this.o.dispatcher.current.with(next, this.o.dispatcher.hostPaths);
    } catch (err) {
      await next.unload(this.o.hookTimeoutMs);
      this.o.observed.abort(rec, 'route conflict');
      this.o.observed.failed(rec, err, fingerprint, { version: next.version, hash: r.hash }, true);
      return undefined;
    }
    const old = rec.serving;
    this.o.dispatcher.swap(table);
    const ms = performance.now() - t0;
    this.o.observed.served(rec, next, row.generation, row.config.revision, r.from, ms);
    this.o.log.info(
      {
        plugin: name,
        version: next.version,
        hash: next.hash,
        ms: tenths(ms),
        from: r.from,
        configRevision: row.config.revision,
        // what the compile of a version built here took (the check and the bundle overlap, the load overlaps both)
        ...(r.artifact?.built === true ? { compile: roundedTimings(r.artifact.timings) } : {}),
      },
      `plugin ${name} ${old !== undefined ? 'reloaded' : 'loaded'} (${next.version})`,
    );
    if (old !== undefined) this.retireInBackground(old);
    return next;
  }

  /**
   * Only the configuration changed: the serving version gets it through its
   * `onConfigChange` and keeps serving, or, without one, a new instance of the
   * same code is loaded beside it with the new configuration (blue/green, no
   * compile). A failure of either keeps the old configuration serving and is
   * recorded under `fingerprint`.
   */
  async reconfigure(rec: PluginRecord, row: PluginWithEndpoints, r: Resolved, fingerprint: string): Promise<void> {
    const serving = rec.serving;
    if (serving === undefined || serving.reconfigure === undefined) {
      await this.load(rec, row, r, fingerprint);
      return;
    }
    const config = await this.configure(rec, row, r, fingerprint);
    if (config === undefined) return;
    let handled: boolean;
    try {
      handled = await serving.reconfigure(config, this.o.hookTimeoutMs);
    } catch (err) {
      this.o.observed.failed(rec, err, fingerprint, { version: serving.version, hash: serving.hash }, true);
      return;
    }
    if (!handled) {
      await this.load(rec, row, r, fingerprint);
      return;
    }
    this.o.observed.reconfigured(rec, row.config.revision);
    this.o.log.info(
      { plugin: rec.name, version: serving.version, configRevision: row.config.revision },
      `plugin ${rec.name} took configuration revision ${row.config.revision} in place (onConfigChange)`,
    );
  }

  /**
   * Nothing of this plugin serves here yet (a restart) and its source no longer builds: serve the
   * artifact the row names — the last version that loaded and was published — and show the source's
   * error as `last_error`, as a failed reload of a running node would. A source change or a reload
   * tries the source again. Returns the version now serving, if any.
   */
  async fallBack(rec: PluginRecord, row: PluginWithEndpoints, sourceErr: unknown, key: string): Promise<LoadedVersion | undefined> {
    if (rec.failedFingerprint === key) return undefined;
    let r: Resolved;
    try {
      r = await this.o.resolver.fromArtifact(row, row.artifactHash as string);
    } catch (err) {
      if (isHostError(err, 'PH_ERR_DB_UNAVAILABLE')) throw err;
      this.o.observed.failed(rec, sourceErr, key, { version: row.version, hash: null }, false);
      return undefined;
    }
    const served = await this.load(rec, row, r, key);
    // served: the source error is recorded beside the serving version; not served: it is the root cause shown
    this.o.observed.failed(rec, sourceErr, key, { version: row.version, hash: null }, true);
    return served;
  }

  /**
   * Takes the plugin out of the route table and unloads what served (after
   * its in-flight requests drained). Returns true when routes were freed:
   * plugins refused for a conflict with them may now load.
   */
  async unload(rec: PluginRecord, reason: string): Promise<boolean> {
    const old = rec.serving;
    if (old === undefined) {
      if (rec.state === 'error') this.o.observed.unloaded(rec, reason);
      return false;
    }
    this.o.observed.unloading(rec, reason);
    this.o.dispatcher.swap(this.o.dispatcher.current.without(rec.name, this.o.dispatcher.hostPaths));
    await this.retire(old);
    this.o.observed.unloaded(rec, reason);
    this.o.log.info({ plugin: rec.name, reason }, `plugin ${rec.name} unloaded (${reason})`);
    return true;
  }

  private retireInBackground(old: LoadedVersion): void {
    const p = this.retire(old).finally(() => this.retiring.delete(p));
    this.retiring.add(p);
  }

  /** Lets a replaced version finish its in-flight requests (bounded), then unloads it. */
  private async retire(old: LoadedVersion): Promise<void> {
    const drained = await old.drain(this.o.drainTimeoutMs);
    if (!drained)
      old.log.warn({ inflight: old.inflight }, `version ${old.version} did not drain within ${this.o.drainTimeoutMs} ms; unloading anyway`);
    await old.unload(this.o.hookTimeoutMs);
  }

  /**
   * The version a failed load was for, so the failure is not shown under the version that still serves
   * (the row's `version` is the last one published). Metadata only: no hook runs. Undefined if unreadable.
   */
  private async versionOf(name: string, r: Resolved): Promise<string | undefined> {
    try {
      return (await this.o.runtimes.get(r.mode).trial(this.request(name, r))).version;
    } catch {
      return undefined;
    }
  }

  /** Waits for replaced versions still draining or cleaning up (shutdown). */
  async stop(): Promise<void> {
    await Promise.all([...this.retiring]);
  }
}

/** A compile's step times to a tenth of a millisecond, for the log. */
function roundedTimings(t: { hashMs: number; typecheckMs: number; bundleMs: number }): Record<string, number> {
  return { hashMs: tenths(t.hashMs), typecheckMs: tenths(t.typecheckMs), bundleMs: tenths(t.bundleMs) };
}

function tenths(x: number): number {
  return Math.round(x * 10) / 10;
}

/** The error of the type check `r` was loaded beside, once it is done; undefined when it passed (or there is none). */
async function checkFailure(r: Resolved): Promise<unknown> {
  if (r.checked === undefined) return undefined;
  try {
    await r.checked;
    return undefined;
  } catch (err) {
    return err;
  }
}
