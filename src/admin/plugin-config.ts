import {
  assertNoProblems,
  type ConfigSchema,
  checkStoredConfig,
  type JsonObject,
  type JsonValue,
  mergePatch,
} from '../config/plugins/index.js';
import type { PluginWithEndpoints, StoredConfig } from '../db/index.js';
import { HostError, isHostError, pluginNotFound, type RecordedError, recordError } from '../errors/index.js';
import { VersionMetadata } from '../manager/configs.js';
import { isSourceError, type Resolved, Resolver } from '../manager/resolve.js';
import { assertPluginName } from '../model/index.js';
import type { RegistrationOptions } from './registration.js';

/** The same parts registration uses: a schema is read from the version a node would load. */
export type PluginConfigAdminOptions = RegistrationOptions;

/** A plugin's configuration as the API shows it: stored values (references as written), never a resolved secret. */
export interface ConfigState {
  name: string;
  /** What is stored: the values as written, secret references unresolved. */
  config: JsonObject;
  /** `config` with the schema's defaults applied (references still unresolved); null when it does not validate. */
  effective: JsonObject | null;
  /** Why `config` does not validate against `schema` (empty when it does). */
  errors: { pointer: string; message: string }[];
  /** The `configSchema` of the version this node loads for the plugin; null when it declares none or it could not be read. */
  schema: ConfigSchema | null;
  /** Why the schema could not be read (the version's code does not load here), when it could not. */
  schema_error: RecordedError | null;
  /** Grows with every change; 0 when nothing is stored. */
  revision: number;
  updated_at: string | null;
  updated_by: string;
}

export interface ConfigChange {
  row: PluginWithEndpoints;
  state: ConfigState;
  /** False when the values equal what was stored (nothing written, no reload). */
  changed: boolean;
}

/** Rounds of read-merge-write a merge patch retries when another write lands in between. */
const PATCH_ATTEMPTS = 10;

/**
 * Reads and writes plugins' configuration (desired state, like the plugins
 * row). Every write is validated first against the schema of the version the
 * plugin's row resolves to (what a node loads), with the schema's defaults and
 * `additionalProperties`; secret references are checked for form and never
 * resolved here. Nothing is written when validation fails.
 */
export class PluginConfigAdmin {
  private readonly resolver: Resolver;
  private readonly versions: VersionMetadata;

  constructor(private readonly o: PluginConfigAdminOptions) {
    // resolved and read as a node does: the same resolver, and the metadata recorded with each version
    this.resolver = new Resolver(o);
    this.versions = new VersionMetadata(o.runtimes, o.recordedMetadata);
  }

  /**
   * The `configSchema` of the version `row` resolves to, as a node loads it: the source here, else the
   * published artifact (also when the source no longer builds: that artifact is what serves). Undefined when none.
   */
  async schemaOf(row: PluginWithEndpoints): Promise<ConfigSchema | undefined> {
    let r: Resolved;
    try {
      r = await this.resolver.resolve(row);
    } catch (err) {
      if (!isSourceError(err) || row.type !== 'dynamic' || row.artifactHash === null) throw err;
      r = await this.resolver.fromArtifact(row, row.artifactHash);
    }
    const metadata = await this.versions.of(
      {
        name: row.name,
        hash: r.hash,
        code: r.code,
        sourceDir: r.sourceDir,
        log: this.o.log.child({ plugin: row.name }),
        hookTimeoutMs: this.o.hookTimeoutMs,
        config: {},
      },
      r.mode,
    );
    return metadata.configSchema as ConfigSchema | undefined;
  }

  private async row(name: string): Promise<PluginWithEndpoints> {
    assertPluginName(name);
    const row = await this.o.repo.getByName(name);
    if (row === undefined) throw pluginNotFound(name);
    return row;
  }

  /** The stored configuration, the schema it is checked against and its revision. */
  async get(name: string): Promise<ConfigState> {
    const row = await this.row(name);
    try {
      return stateOf(name, row.config, await this.schemaOf(row), null);
    } catch (err) {
      if (isHostError(err, 'PH_ERR_DB_UNAVAILABLE')) throw err;
      return stateOf(name, row.config, undefined, recordError(err));
    }
  }

  /**
   * Stores `body` as the whole configuration, after validating it. With
   * `expectedRevision` (an `If-Match`), only if that is still the stored revision.
   */
  async put(name: string, body: unknown, opts: { by: string; expectedRevision?: number }): Promise<ConfigChange> {
    const row = await this.row(name);
    const schema = await this.schemaOf(row);
    checkStoredConfig(name, schema, body);
    return this.write(row, schema, body as JsonObject, opts);
  }

  /** Applies a JSON merge patch (RFC 7386) to the stored configuration, validates the result and stores it. */
  async patch(name: string, patch: unknown, opts: { by: string; expectedRevision?: number }): Promise<ConfigChange> {
    const row = await this.row(name);
    const schema = await this.schemaOf(row);
    if (patch === undefined) assertNoProblems(name, [{ pointer: '', message: 'must be a JSON merge patch, got no body' }]);
    let stored = row.config;
    for (let attempt = 1; ; attempt++) {
      if (opts.expectedRevision !== undefined && stored.revision !== opts.expectedRevision)
        throw conflict(name, stored, opts.expectedRevision);
      const merged = mergePatch(stored.values, patch as JsonValue);
      checkStoredConfig(name, schema, merged);
      const expectedRevision = opts.expectedRevision ?? stored.revision;
      try {
        return await this.write(row, schema, merged as JsonObject, { by: opts.by, expectedRevision });
      } catch (err) {
        // another write landed between the read and this one: merge into it, unless the caller named a revision
        if (!isHostError(err, 'PH_ERR_PLUGIN_CONFIG_CONFLICT') || opts.expectedRevision !== undefined || attempt >= PATCH_ATTEMPTS)
          throw err;
        const now = await this.o.repo.configs.get(name);
        if (now === undefined) throw pluginNotFound(name);
        stored = now;
      }
    }
  }

  private async write(
    row: PluginWithEndpoints,
    schema: ConfigSchema | undefined,
    values: JsonObject,
    opts: { by: string; expectedRevision?: number },
  ): Promise<ConfigChange> {
    const name = row.name;
    const w = await this.o.repo.configs.put(name, values, opts.by, opts.expectedRevision);
    if (w.outcome === 'missing') throw pluginNotFound(name);
    if (w.outcome === 'conflict') throw conflict(name, w.stored, opts.expectedRevision ?? 0);
    const changed = w.outcome === 'written';
    // never the values: they may hold secret references an operator would rather not see in logs either
    if (changed)
      this.o.log.info(
        { plugin: name, configRevision: w.stored.revision, by: opts.by },
        `plugin ${name} configuration stored (revision ${w.stored.revision})`,
      );
    return { row: { ...row, config: w.stored }, state: stateOf(name, w.stored, schema, null), changed };
  }
}

function stateOf(name: string, stored: StoredConfig, schema: ConfigSchema | undefined, schemaError: RecordedError | null): ConfigState {
  let effective: JsonObject | null = null;
  let errors: ConfigState['errors'] = [];
  if (schemaError === null) {
    try {
      effective = checkStoredConfig(name, schema, stored.values);
    } catch (err) {
      if (!isHostError(err, 'PH_ERR_PLUGIN_CONFIG_INVALID')) throw err;
      errors = (err.details?.errors as ConfigState['errors'] | undefined) ?? [];
    }
  }
  return {
    name,
    config: stored.values,
    effective,
    errors,
    schema: schema ?? null,
    schema_error: schemaError,
    revision: stored.revision,
    updated_at: stored.updatedAt?.toISOString() ?? null,
    updated_by: stored.updatedBy,
  };
}

function conflict(name: string, stored: StoredConfig, expected: number): HostError {
  return new HostError(
    'PH_ERR_PLUGIN_CONFIG_CONFLICT',
    `${name}: the configuration is at revision ${stored.revision}, not ${expected}: read it again and retry`,
    { details: { revision: stored.revision } },
  );
}
