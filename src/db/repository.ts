import { randomUUID } from 'node:crypto';
import { and, asc, eq, getTableColumns, gt, inArray, isNotNull, lt, notExists, or, type SQL, sql } from 'drizzle-orm';
import type { JsonObject } from '../config/plugins/json.js';
import type { PluginStatus } from '../model/index.js';
import { guardConnectionErrors } from './connection-errors.js';
import { rowsFromJson } from './json-rows.js';
import type { EndpointRow, NewPluginRow, NodeStateRow, PluginConfigRow, PluginRow, RemovalRow, RolloutRow } from './schema.js';
import {
  hostNodes,
  pluginArtifacts,
  pluginConfigs,
  pluginEndpoints,
  pluginNodeState,
  pluginRemovals,
  pluginRollouts,
  pluginSources,
  plugins,
  pluginVersions,
} from './schema.js';
import type { Orm } from './types.js';

export interface EndpointInput {
  method: string;
  path: string;
  handler?: string;
  type?: string;
}

/** A plugin's stored configuration: values as written (secret references unresolved) and their revision. */
export interface StoredConfig {
  values: JsonObject;
  /** Grows with every change (one sequence for every plugin); 0 when nothing is stored. */
  revision: number;
  updatedAt: Date | null;
  updatedBy: string;
}

/** What a plugin without a stored configuration has. */
export const NO_STORED_CONFIG: StoredConfig = Object.freeze({ values: {}, revision: 0, updatedAt: null, updatedBy: '' });

export interface PluginWithEndpoints extends PluginRow {
  endpoints: EndpointRow[];
  /** Read with the row, in the same statement: a reconcile sees the row and its configuration together. */
  config: StoredConfig;
  /** The plugin's staged rollout (its latest), read with the row: part of the desired state. */
  rollout?: RolloutRow | null;
}

/** Who published a version, and how: recorded with it in the version history. */
export interface VersionRecord {
  metadata: Record<string, unknown>;
  publishedBy: string;
  action: string;
}

/** The outcome of a configuration write. */
export type ConfigWrite =
  | { outcome: 'written' | 'unchanged'; stored: StoredConfig }
  /** `expectedRevision` was not the stored revision: nothing written. */
  | { outcome: 'conflict'; stored: StoredConfig }
  /** No plugin of that name. */
  | { outcome: 'missing' };

export interface ArtifactRecord {
  hash: string;
  pluginName: string;
  version: string;
  format: string;
  bundle: string;
  /** Hex SHA-256 of `bundle`. */
  sha256: string;
}

/** The row a publication names its artifact in, and what it changes there (its hash, version and so on). */
export interface ArtifactRowUpdate {
  name: string;
  patch: Partial<Omit<NewPluginRow, 'id' | 'name' | 'createdAt'>>;
}

export interface NodeStateInput {
  nodeId: string;
  pluginName: string;
  state: string;
  servingVersion: string | null;
  servingHash: string | null;
  isolation: string | null;
  servingConfigRevision: number | null;
  note: string | null;
  failedVersion: string | null;
  failedHash: string | null;
  lastErrorCode: string | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

/** The columns an observed-state upsert overwrites (all but its key). */
const NODE_STATE_FIELDS = [
  'state',
  'servingVersion',
  'servingHash',
  'isolation',
  'servingConfigRevision',
  'note',
  'failedVersion',
  'failedHash',
  'lastErrorCode',
  'lastError',
  'lastErrorAt',
] as const satisfies ReadonlyArray<Exclude<keyof NodeStateInput, 'nodeId' | 'pluginName'>>;
// A field added to NodeStateInput must be listed above, or an upsert would keep its old value: this fails to compile.
const everyFieldListed: Exclude<keyof NodeStateInput, 'nodeId' | 'pluginName' | (typeof NODE_STATE_FIELDS)[number]> extends never
  ? true
  : never = true;
void everyFieldListed;

export interface NodeView extends NodeStateRow {
  address: string;
  heartbeatAt: Date;
}

/**
 * Owns the `plugins`, `plugin_endpoints`, `plugin_artifacts` and observed-state
 * tables. Every write of desired state goes through here; the trigger turns it
 * into a notification for every node.
 */
export class PluginRepository {
  /** The last version of each row read successfully, by any reader (reconciles, the API). */
  private readonly known = new Map<string, PluginWithEndpoints>();

  constructor(private readonly orm: Orm) {}

  async list(filter: { status?: string } = {}): Promise<PluginWithEndpoints[]> {
    const rows = await this.selectPlugins()
      .where(filter.status === undefined ? undefined : eq(plugins.status, filter.status))
      .orderBy(asc(plugins.name));
    const out = rows.map(withEndpoints);
    if (filter.status === undefined) this.known.clear();
    for (const r of out) this.known.set(r.name, r);
    return out;
  }

  /** The names of every registered plugin (one light query, for discovery to tell new directories apart). */
  async names(): Promise<Set<string>> {
    const rows = await this.orm.select({ name: plugins.name }).from(plugins);
    return new Set(rows.map((r) => r.name));
  }

  async getByName(name: string): Promise<PluginWithEndpoints | undefined> {
    const rows = await this.selectPlugins().where(eq(plugins.name, name));
    const row = rows.map(withEndpoints)[0];
    if (row === undefined) this.known.delete(name);
    else this.known.set(name, row);
    return row;
  }

  /**
   * What this node last read of every plugin row, without a round trip: the
   * answer while the database is unreachable (flagged stale by the caller).
   * Every reconcile re-reads its row, so this is as fresh as this node's view.
   */
  knownRows(filter: { status?: string } = {}): PluginWithEndpoints[] {
    return [...this.known.values()]
      .filter((r) => filter.status === undefined || r.status === filter.status)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  knownRow(name: string): PluginWithEndpoints | undefined {
    return this.known.get(name);
  }

  /** The stored configuration of `name` (`NO_STORED_CONFIG` when none is), or undefined when no such plugin is registered. */
  async getConfig(name: string): Promise<StoredConfig | undefined> {
    const rows = await this.orm
      .select({ name: plugins.name, config: pluginConfigs })
      .from(plugins)
      .leftJoin(pluginConfigs, eq(pluginConfigs.pluginName, plugins.name))
      .where(eq(plugins.name, name));
    const r = rows[0];
    return r === undefined ? undefined : storedOf(r.config);
  }

  /**
   * Stores `values` as the whole configuration of `name`. With
   * `expectedRevision` (0: nothing stored) it is written only if that is still
   * the stored revision. Equal values are not written (no new revision, no
   * notification). The trigger sets the revision and notifies every node.
   */
  async putConfig(name: string, values: JsonObject, by: string, expectedRevision?: number): Promise<ConfigWrite> {
    const json = sql`${JSON.stringify(values)}::jsonb`;
    let written: PluginConfigRow[];
    try {
      if (expectedRevision === undefined) {
        written = await this.orm
          .insert(pluginConfigs)
          .values({ pluginName: name, config: json, updatedBy: by })
          .onConflictDoUpdate({
            target: pluginConfigs.pluginName,
            set: { config: sql`excluded.config`, updatedBy: sql`excluded.updated_by` },
            setWhere: sql`${pluginConfigs.config} IS DISTINCT FROM excluded.config`,
          })
          .returning();
      } else if (expectedRevision === 0) {
        written = await this.orm
          .insert(pluginConfigs)
          .values({ pluginName: name, config: json, updatedBy: by })
          .onConflictDoNothing({ target: pluginConfigs.pluginName })
          .returning();
      } else {
        written = await this.orm
          .update(pluginConfigs)
          .set({ config: json, updatedBy: by })
          .where(and(eq(pluginConfigs.pluginName, name), eq(pluginConfigs.revision, expectedRevision)))
          .returning();
      }
    } catch (err) {
      if (isForeignKeyViolation(err)) return { outcome: 'missing' };
      throw err;
    }
    if (written[0] !== undefined) return { outcome: 'written', stored: storedOf(written[0]) };
    const now = await this.getConfig(name);
    if (now === undefined) return { outcome: 'missing' };
    if (expectedRevision !== undefined && now.revision !== expectedRevision) return { outcome: 'conflict', stored: now };
    return { outcome: 'unchanged', stored: now };
  }

  async getById(id: string): Promise<PluginRow | undefined> {
    const rows = await this.orm.select().from(plugins).where(eq(plugins.id, id));
    return rows[0];
  }

  /**
   * A plugin row with its configuration, endpoints and rollout, in one statement: one round trip per read
   * (a reconcile reads its row on every change), and one snapshot, so a promotion or an abort, which
   * changes the rollout and the row in one transaction, is seen whole or not at all.
   */
  private selectPlugins() {
    return this.orm
      .select({
        plugin: plugins,
        config: pluginConfigs,
        endpoints: sql<unknown>`(SELECT coalesce(json_agg(e ORDER BY e.path, e.method), '[]'::json) FROM ${pluginEndpoints} e WHERE e.plugin_id = ${plugins.id})`,
        rollout: sql<unknown>`(SELECT row_to_json(r) FROM ${pluginRollouts} r WHERE r.plugin_id = ${plugins.id} ORDER BY r.started_at DESC LIMIT 1)`,
      })
      .from(plugins)
      .leftJoin(pluginConfigs, eq(pluginConfigs.pluginName, plugins.name));
  }

  /**
   * Inserts a plugin unless its name exists; returns the row and whether it was created. With
   * `unlessRemoved`, a name an operator removed is not inserted either (`removed: true`): discovery never
   * brings a removed plugin back. Any insert of a name forgets its removal (a trigger).
   */
  async insertIfAbsent(
    row: Omit<NewPluginRow, 'id'>,
    endpoints: EndpointInput[],
    opts: { unlessRemoved?: boolean; artifact?: { record: ArtifactRecord; history?: VersionRecord } } = {},
  ): Promise<{ row: PluginRow | undefined; created: boolean; removed: boolean }> {
    // One statement (one round trip, one commit): the artifact a registration proved and its history entry
    // when given, the row unless the name exists (or, `unlessRemoved`, was removed), and its endpoints.
    const columns = getTableColumns(plugins);
    const values = Object.entries({ id: randomUUID(), ...row }).filter(([, v]) => v !== undefined) as Array<
      [keyof typeof columns, unknown]
    >;
    const names = sql.join(
      values.map(([k]) => sql.identifier(columns[k].name)),
      sql`, `,
    );
    // INSERT … SELECT types its values from the expressions: each is cast to its column's type
    const selected = sql.join(
      values.map(([k, v]) => sql`${sql.param(v, columns[k])}::${sql.raw(columns[k].getSQLType())}`),
      sql`, `,
    );
    const eps = JSON.stringify(endpoints.map((e) => endpointRecord(e)));
    const publication = opts.artifact === undefined ? sql`` : sql`${publicationCtes(opts.artifact.record, opts.artifact.history)}, `;
    const result = await this.orm.execute(sql`WITH ${publication}
      removal AS (SELECT 1 FROM ${pluginRemovals} WHERE name = ${row.name} AND ${opts.unlessRemoved === true}::boolean),
      created AS (
        INSERT INTO ${plugins} (${names}) SELECT ${selected} WHERE NOT EXISTS (SELECT 1 FROM removal)
        ON CONFLICT (name) DO NOTHING RETURNING *
      ),
      endpoints AS (
        INSERT INTO ${pluginEndpoints} (plugin_id, method, path, handler, type)
        SELECT c.id, e.method, e.path, e.handler, e.type
        FROM created c, json_to_recordset(${eps}::json) AS e(method text, path text, handler text, type text)
        ON CONFLICT DO NOTHING
      )
      SELECT EXISTS (SELECT 1 FROM removal) AS removed, (SELECT row_to_json(c) FROM created c) AS created`);
    const out = rowsOf(result)[0] as { removed: boolean; created: unknown } | undefined;
    if (out?.removed === true) return { row: undefined, created: false, removed: true };
    const created = rowsFromJson(plugins, out?.created)[0];
    if (created !== undefined) return { row: created, created: true, removed: false };
    const existing = await this.orm.select().from(plugins).where(eq(plugins.name, row.name));
    return { row: existing[0] as PluginRow, created: false, removed: false };
  }

  async update(name: string, patch: Partial<Omit<NewPluginRow, 'id' | 'name' | 'createdAt'>>): Promise<PluginRow | undefined> {
    const rows = await this.orm.update(plugins).set(patch).where(eq(plugins.name, name)).returning();
    return rows[0];
  }

  async setStatus(name: string, status: PluginStatus): Promise<PluginRow | undefined> {
    return this.update(name, { status });
  }

  /** Flips active/inactive atomically; returns the new row. */
  async toggle(name: string): Promise<PluginRow | undefined> {
    const rows = await this.orm
      .update(plugins)
      .set({ status: sql`CASE WHEN ${plugins.status} = 'active' THEN 'inactive' ELSE 'active' END` })
      .where(eq(plugins.name, name))
      .returning();
    return rows[0];
  }

  /** Forces every node to reload, even with an unchanged artifact. */
  async bumpGeneration(name: string, patch: Partial<Omit<NewPluginRow, 'id' | 'name'>> = {}): Promise<PluginRow | undefined> {
    const rows = await this.orm
      .update(plugins)
      .set({ ...patch, generation: sql`${plugins.generation} + 1` })
      .where(eq(plugins.name, name))
      .returning();
    return rows[0];
  }

  /** Deletes the row; the removal is remembered (with `by`) so discovery does not register the name again. */
  async delete(name: string, by = ''): Promise<PluginRow | undefined> {
    return this.orm.transaction(async (tx) => {
      // read by the trigger that records the removal; local to this transaction
      await tx.execute(sql`SELECT set_config('plugin_host.removed_by', ${by}, true)`);
      const rows = await tx.delete(plugins).where(eq(plugins.name, name)).returning();
      return rows[0];
    });
  }

  /** Plugins removed by name and not registered again, oldest first. */
  async removals(): Promise<RemovalRow[]> {
    return this.orm.select().from(pluginRemovals).orderBy(asc(pluginRemovals.removedAt));
  }

  /** Replaces the endpoint list (declared plus really registered routes) when it changed. */
  async replaceEndpoints(pluginId: string, endpoints: EndpointInput[]): Promise<void> {
    await this.replaceEndpointsOf(new Map([[pluginId, endpoints]]));
  }

  /** `replaceEndpoints` for several plugins in one transaction (by plugin id); a plugin whose list is unchanged is left alone. */
  async replaceEndpointsOf(lists: ReadonlyMap<string, readonly EndpointInput[]>): Promise<void> {
    if (lists.size === 0) return;
    const ids = [...lists.keys()];
    await this.orm.transaction(async (tx) => {
      const current = await tx.select().from(pluginEndpoints).where(inArray(pluginEndpoints.pluginId, ids));
      const key = (e: { method: string; path: string; handler?: string | null; type?: string | null }) =>
        `${e.method} ${e.path} ${e.handler ?? ''} ${e.type ?? 'REST'}`;
      const changed = ids.filter((id) => {
        const want = new Set((lists.get(id) ?? []).map(key));
        const have = new Set(current.filter((c) => c.pluginId === id).map(key));
        return !(want.size === have.size && [...want].every((k) => have.has(k)));
      });
      if (changed.length === 0) return;
      await tx.delete(pluginEndpoints).where(inArray(pluginEndpoints.pluginId, changed));
      const rows = changed.flatMap((id) => (lists.get(id) ?? []).map((e) => ({ plugin_id: id, ...endpointRecord(e) })));
      // one JSON parameter rather than five per row: a first round writes hundreds of rows here at once
      if (rows.length > 0) {
        await tx.execute(sql`INSERT INTO ${pluginEndpoints} (plugin_id, method, path, handler, type)
          SELECT e.plugin_id, e.method, e.path, e.handler, e.type
          FROM json_to_recordset(${JSON.stringify(rows)}::json)
            AS e(plugin_id text, method text, path text, handler text, type text)
          ON CONFLICT DO NOTHING`);
      }
    });
  }

  /** The SHA-256 recorded for an artifact, or undefined when it is not in the store. */
  async artifactDigest(hash: string): Promise<string | undefined> {
    const rows = await this.orm.select({ sha256: pluginArtifacts.sha256 }).from(pluginArtifacts).where(eq(pluginArtifacts.hash, hash));
    return rows[0]?.sha256;
  }

  /** The SHA-256 recorded for each of `hashes` that is in the store. */
  async artifactDigests(hashes: readonly string[]): Promise<Map<string, string>> {
    if (hashes.length === 0) return new Map();
    const rows = await this.orm
      .select({ hash: pluginArtifacts.hash, sha256: pluginArtifacts.sha256 })
      .from(pluginArtifacts)
      .where(inArray(pluginArtifacts.hash, [...hashes]));
    return new Map(rows.map((r) => [r.hash, r.sha256]));
  }

  /**
   * Stores an artifact (idempotent) and, with `record`, its entry in the version history (recorded once per
   * plugin and hash); with `row`, the plugin row that names it is changed too. One statement (one round trip,
   * one commit): the nodes woken by the row's change find the artifact and its history already there.
   */
  async putArtifact(a: ArtifactRecord, record?: VersionRecord, row?: ArtifactRowUpdate): Promise<void> {
    const then = row === undefined ? sql`SELECT 1` : this.orm.update(plugins).set(row.patch).where(eq(plugins.name, row.name)).getSQL();
    await this.orm.execute(sql`WITH ${publicationCtes(a, record)} ${then}`);
  }

  /** Stores an uploaded plugin's source archive; the same archive again is a no-op. */
  async putSource(s: { hash: string; pluginName: string; archive: Buffer }): Promise<void> {
    await this.orm
      .insert(pluginSources)
      .values({ hash: s.hash, pluginName: s.pluginName, archive: s.archive.toString('base64'), size: s.archive.length })
      .onConflictDoNothing();
  }

  async getSource(hash: string): Promise<Buffer | undefined> {
    const rows = await this.orm.select({ archive: pluginSources.archive }).from(pluginSources).where(eq(pluginSources.hash, hash));
    const row = rows[0];
    return row === undefined ? undefined : Buffer.from(row.archive, 'base64');
  }

  async getArtifact(hash: string): Promise<ArtifactRecord | undefined> {
    const rows = await this.orm
      .select({
        hash: pluginArtifacts.hash,
        pluginName: pluginArtifacts.pluginName,
        version: pluginArtifacts.version,
        format: pluginArtifacts.format,
        bundle: pluginArtifacts.bundle,
        sha256: pluginArtifacts.sha256,
      })
      .from(pluginArtifacts)
      .where(eq(pluginArtifacts.hash, hash));
    return rows[0];
  }

  /**
   * Deletes artifacts created before `olderThan` that nothing refers to: no plugin row names (or pins) them,
   * no kept version or rollout names them, and no node whose heartbeat is newer than `liveSince` serves them. Returns the hashes deleted.
   */
  async collectArtifacts(olderThan: Date, liveSince: Date): Promise<string[]> {
    const named = this.orm
      .select({ one: sql`1` })
      .from(plugins)
      .where(or(eq(plugins.artifactHash, pluginArtifacts.hash), eq(plugins.pinnedHash, pluginArtifacts.hash)));
    // a version kept in the history (retention trims it first) or taking part in a rollout can be served again
    const kept = this.orm.select({ one: sql`1` }).from(pluginVersions).where(eq(pluginVersions.hash, pluginArtifacts.hash));
    const rolled = this.orm
      .select({ one: sql`1` })
      .from(pluginRollouts)
      .where(or(eq(pluginRollouts.candidateHash, pluginArtifacts.hash), eq(pluginRollouts.previousHash, pluginArtifacts.hash)));
    const served = this.orm
      .select({ one: sql`1` })
      .from(pluginNodeState)
      .innerJoin(hostNodes, eq(hostNodes.nodeId, pluginNodeState.nodeId))
      .where(and(eq(pluginNodeState.servingHash, pluginArtifacts.hash), gt(hostNodes.heartbeatAt, liveSince)));
    const rows = await this.orm
      .delete(pluginArtifacts)
      .where(and(lt(pluginArtifacts.createdAt, olderThan), notExists(named), notExists(served), notExists(kept), notExists(rolled)))
      .returning({ hash: pluginArtifacts.hash });
    return rows.map((r) => r.hash);
  }

  /** Hashes something still refers to: a plugin row (published or pinned), the version history, a rollout, or a node whose heartbeat is newer than `liveSince`. */
  async referencedArtifacts(liveSince: Date): Promise<Set<string>> {
    const named = await this.orm.select({ hash: plugins.artifactHash }).from(plugins).where(isNotNull(plugins.artifactHash));
    const pinned = await this.orm.select({ hash: plugins.pinnedHash }).from(plugins).where(isNotNull(plugins.pinnedHash));
    const kept = await this.orm.select({ hash: pluginVersions.hash }).from(pluginVersions);
    const rolled = await this.orm.select({ a: pluginRollouts.candidateHash, b: pluginRollouts.previousHash }).from(pluginRollouts);
    const served = await this.orm
      .select({ hash: pluginNodeState.servingHash })
      .from(pluginNodeState)
      .innerJoin(hostNodes, eq(hostNodes.nodeId, pluginNodeState.nodeId))
      .where(and(isNotNull(pluginNodeState.servingHash), gt(hostNodes.heartbeatAt, liveSince)));
    const hashes = [...named, ...pinned, ...kept, ...served].map((r) => r.hash);
    for (const r of rolled) hashes.push(r.a, r.b);
    return new Set(hashes.filter((h): h is string => h !== null));
  }

  /** Deletes the rows of nodes whose heartbeat is older than `olderThan` (their observed state cascades). */
  async collectDeadNodes(olderThan: Date): Promise<string[]> {
    const rows = await this.orm.delete(hostNodes).where(lt(hostNodes.heartbeatAt, olderThan)).returning({ nodeId: hostNodes.nodeId });
    return rows.map((r) => r.nodeId);
  }

  async registerNode(nodeId: string, address: string, pid: number): Promise<void> {
    await this.orm
      .insert(hostNodes)
      .values({ nodeId, address, pid })
      .onConflictDoUpdate({ target: hostNodes.nodeId, set: { address, pid, heartbeatAt: sql`now()` } });
  }

  async heartbeat(nodeId: string, address: string, pid: number): Promise<void> {
    await this.registerNode(nodeId, address, pid);
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.orm.delete(hostNodes).where(eq(hostNodes.nodeId, nodeId));
  }

  async recordNodeState(s: NodeStateInput): Promise<void> {
    await this.recordNodeStates([s]);
  }

  /** Upserts several plugins' observed state in one statement (at most one entry per node and plugin). */
  async recordNodeStates(states: readonly NodeStateInput[]): Promise<void> {
    if (states.length === 0) return;
    const now = new Date();
    const set: Record<string, SQL> = { updatedAt: sql.raw(`excluded.${pluginNodeState.updatedAt.name}`) };
    for (const key of NODE_STATE_FIELDS) set[key] = sql.raw(`excluded.${pluginNodeState[key].name}`);
    await this.orm
      .insert(pluginNodeState)
      .values(states.map((s) => ({ ...s, updatedAt: now })))
      .onConflictDoUpdate({ target: [pluginNodeState.nodeId, pluginNodeState.pluginName], set });
  }

  async removeNodeState(nodeId: string, pluginName: string): Promise<void> {
    await this.removeNodeStates(nodeId, [pluginName]);
  }

  async removeNodeStates(nodeId: string, pluginNames: readonly string[]): Promise<void> {
    if (pluginNames.length === 0) return;
    await this.orm
      .delete(pluginNodeState)
      .where(and(eq(pluginNodeState.nodeId, nodeId), inArray(pluginNodeState.pluginName, [...pluginNames])));
  }

  /** Every live node's view of a plugin (heartbeat within `liveWithinMs`). */
  async nodeViews(pluginName: string | undefined, liveWithinMs: number): Promise<NodeView[]> {
    const since = new Date(Date.now() - liveWithinMs);
    const rows = await this.orm
      .select({ s: pluginNodeState, address: hostNodes.address, heartbeatAt: hostNodes.heartbeatAt })
      .from(pluginNodeState)
      .innerJoin(hostNodes, eq(hostNodes.nodeId, pluginNodeState.nodeId))
      .where(and(pluginName === undefined ? undefined : eq(pluginNodeState.pluginName, pluginName), gt(hostNodes.heartbeatAt, since)))
      .orderBy(asc(pluginNodeState.nodeId));
    return rows.map((r) => ({ ...r.s, address: r.address, heartbeatAt: r.heartbeatAt }));
  }
}

function storedOf(c: PluginConfigRow | null): StoredConfig {
  if (c === null) return NO_STORED_CONFIG;
  return { values: c.config, revision: c.revision, updatedAt: c.updatedAt, updatedBy: c.updatedBy };
}

/** A write naming a plugin that does not exist (any more): PostgreSQL's foreign_key_violation, wherever the driver put it. */
function isForeignKeyViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === '23503') return true;
  }
  return false;
}

// Connection failures leave every repository call as `PH_ERR_DB_UNAVAILABLE` (cause kept): wrapped here, where they enter.
guardConnectionErrors(PluginRepository.prototype);

/** A row of `selectPlugins()` as the reconcile reads it. */
function withEndpoints(j: {
  plugin: PluginRow;
  config: PluginConfigRow | null;
  endpoints: unknown;
  rollout: unknown;
}): PluginWithEndpoints {
  return {
    ...j.plugin,
    config: storedOf(j.config),
    endpoints: rowsFromJson(pluginEndpoints, j.endpoints),
    rollout: rowsFromJson(pluginRollouts, j.rollout)[0] ?? null,
  };
}

/** The artifact and, with `record`, its version-history entry, as the CTEs of a publishing statement. */
function publicationCtes(a: ArtifactRecord, record: VersionRecord | undefined): SQL {
  const artifact = sql`INSERT INTO ${pluginArtifacts} (hash, plugin_name, version, format, bundle, sha256, size)
      VALUES (${a.hash}, ${a.pluginName}, ${a.version}, ${a.format}, ${a.bundle}, ${a.sha256}, ${Buffer.byteLength(a.bundle)})
      ON CONFLICT DO NOTHING`;
  if (record === undefined) return sql`artifact AS (${artifact})`;
  const version = sql`INSERT INTO ${pluginVersions} (plugin_name, hash, version, sha256, metadata, published_by, action)
      VALUES (${a.pluginName}, ${a.hash}, ${a.version}, ${a.sha256}, ${JSON.stringify(record.metadata)}::jsonb, ${record.publishedBy}, ${record.action})
      ON CONFLICT DO NOTHING`;
  return sql`artifact AS (${artifact}), version AS (${version})`;
}

/** The rows of `orm.execute()`: postgres.js returns them as the result, PGlite under `rows`. */
function rowsOf(result: unknown): unknown[] {
  return Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? []);
}

/** An endpoint as stored: the handler name and type filled in with their defaults. */
function endpointRecord(e: EndpointInput): { method: string; path: string; handler: string; type: string } {
  return { method: e.method, path: e.path, handler: e.handler ?? '', type: e.type ?? 'REST' };
}
