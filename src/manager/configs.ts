import {
  type ConfigSchema,
  finalizeConfig,
  type JsonObject,
  noteSecrets,
  resolveReferences,
  type SecretEnvironment,
} from '../config/plugins/index.js';
import type { StoredConfig } from '../db/index.js';
import { isHostError } from '../errors/index.js';
import type { IsolationMode } from '../model/index.js';
import type { LoadRequest, Runtimes } from '../runtime/index.js';
import type { PluginMetadata } from '../sdk/index.js';

/**
 * The metadata recorded with a version when it was published (the version history), by plugin and
 * artifact hash; undefined when none is recorded (a static plugin, a version collected by retention).
 */
export interface RecordedMetadata {
  one(name: string, hash: string): Promise<PluginMetadata | undefined>;
  /** Several versions in one read, by `name\0hash` (those with none recorded left out). */
  many(versions: ReadonlyArray<{ name: string; hash: string }>): Promise<Map<string, PluginMetadata>>;
}

/** Metadata kept, by plugin and artifact hash (content-addressed, so an entry never goes stale). */
const MAX_KEPT = 512;

/**
 * The metadata of a version (its `configSchema` above all), read by a trial load (evaluate,
 * factory, metadata: no hook runs) once per version and kept, since an artifact hash always
 * names the same code.
 */
export class VersionMetadata {
  private readonly kept = new Map<string, PluginMetadata>();

  constructor(
    private readonly runtimes: Runtimes,
    private readonly recorded?: RecordedMetadata,
  ) {}

  /**
   * Throws the trial's coded error. The trial runs in the runtime the version will run in: a worker
   * plugin's module code never runs in the serving thread.
   */
  /** `builtHere`: the artifact was just built by this node, so nothing can have recorded its metadata yet. */
  async of(req: LoadRequest, mode: IsolationMode, builtHere = false): Promise<PluginMetadata> {
    const key = `${req.name}\0${req.hash}`;
    const hit = this.kept.get(key);
    if (hit !== undefined) return hit;
    // What was proven when the version was published saves evaluating its code once more (at every start,
    // and on a node that loads a published artifact); the trial is the fallback.
    const m = (builtHere ? undefined : await this.recordedOf(req)) ?? (await this.runtimes.get(mode).trial(req));
    if (this.kept.size >= MAX_KEPT) this.kept.delete(this.kept.keys().next().value as string);
    this.kept.set(key, m);
    return m;
  }

  /**
   * Reads the recorded metadata of the versions about to load (the first full reconcile) in one query
   * instead of one per plugin. Best effort: a version not read here is read, or trial-loaded, when it loads.
   */
  async readAhead(versions: ReadonlyArray<{ name: string; hash: string }>): Promise<void> {
    if (this.recorded === undefined || versions.length === 0) return;
    try {
      for (const [key, m] of await this.recorded.many(versions)) {
        const name = key.slice(0, key.indexOf('\0'));
        if (usable(m, name) && this.kept.size < MAX_KEPT) this.kept.set(key, m);
      }
    } catch {
      // each load reads its own
    }
  }

  private async recordedOf(req: LoadRequest): Promise<PluginMetadata | undefined> {
    if (this.recorded === undefined || req.code.kind !== 'bundle') return undefined;
    try {
      const m = await this.recorded.one(req.name, req.hash);
      return m !== undefined && usable(m, req.name) ? m : undefined;
    } catch (err) {
      // a lost connection is the run's to retry; anything else leaves the trial to answer
      if (isHostError(err, 'PH_ERR_DB_UNAVAILABLE')) throw err;
      return undefined;
    }
  }
}

/** Recorded metadata of the plugin it names, in the shape a trial answers (else the trial is asked). */
function usable(m: PluginMetadata, name: string): boolean {
  return m !== null && typeof m === 'object' && m.name === name && typeof m.version === 'string';
}

export interface VersionConfigsOptions {
  runtimes: Runtimes;
  /** The metadata recorded with each published version, read instead of a trial load when there. */
  recorded?: RecordedMetadata;
  /** Where secret references resolve on this node. */
  environment: SecretEnvironment;
}

/**
 * The configuration a version gets on this node: the stored values, secret
 * references resolved from this node's environment, validated against the
 * schema that version declares, defaults applied.
 */
export class VersionConfigs {
  private readonly metadata: VersionMetadata;

  constructor(private readonly o: VersionConfigsOptions) {
    this.metadata = new VersionMetadata(o.runtimes, o.recorded);
  }

  /** See `VersionMetadata.readAhead`. */
  readAhead(versions: ReadonlyArray<{ name: string; hash: string }>): Promise<void> {
    return this.metadata.readAhead(versions);
  }

  /** The version's metadata (its `configSchema` above all). Throws the trial's coded error. */
  metadataOf(req: LoadRequest, mode: IsolationMode, builtHere = false): Promise<PluginMetadata> {
    return this.metadata.of(req, mode, builtHere);
  }

  /**
   * What `ctx.config` will be. Throws `PH_ERR_PLUGIN_CONFIG_SECRET` for a
   * reference this node cannot resolve (naming it), `PH_ERR_PLUGIN_CONFIG_INVALID`
   * for values the version's schema refuses (naming each field, never a value).
   */
  prepare(name: string, metadata: PluginMetadata, stored: StoredConfig): JsonObject {
    const { config, secrets } = resolveReferences(name, stored.values, this.o.environment);
    // before anything could log or record them
    noteSecrets(secrets);
    return finalizeConfig(name, metadata.configSchema as ConfigSchema | undefined, config);
  }
}
