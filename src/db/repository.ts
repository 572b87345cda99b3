import { randomUUID } from 'node:crypto';
import { asc, eq, getTableColumns, inArray, sql } from 'drizzle-orm';
import { type EndpointInput, endpointKey, endpointRecord, type PluginStatus } from '../model/index.js';
import { type ArtifactRecord, ArtifactRows, publicationCtes, type VersionRecord } from './artifact-rows.js';
import { ConfigRows, type StoredConfig, storedOf } from './config-rows.js';
import { guardConnectionErrors } from './connection-errors.js';
import { rowsFromJson } from './json-rows.js';
import { NodeRows } from './node-rows.js';
import type { EndpointRow, NewPluginRow, PluginConfigRow, PluginRow, RemovalRow, RolloutRow } from './schema.js';
import { pluginConfigs, pluginEndpoints, pluginRemovals, pluginRollouts, plugins } from './schema.js';
import type { Orm } from './types.js';

export type { EndpointInput } from '../model/index.js';

export interface PluginWithEndpoints extends PluginRow {
  endpoints: EndpointRow[];
  /** Read with the row, in the same statement: a reconcile sees the row and its configuration together. */
  config: StoredConfig;
  /** The plugin's staged rollout (its latest), read with the row: part of the desired state. */
  rollout?: RolloutRow | null;
}

/**
 * Owns the `plugins` and `plugin_endpoints` tables (and the removals they leave), and holds the other
 * table families, one file each: `configs` (plugin_configs), `artifacts` (plugin_artifacts,
 * plugin_sources) and `nodes` (host_nodes, plugin_node_state). The releases family (versions, pins,
 * rollouts) is `ReleaseRepository`. Every write of desired state goes through here; the trigger turns it
 * into a notification for every node.
 */
export class PluginRepository {
  /** The last version of each row read successfully, by any reader (reconciles, the API). */
  private readonly known = new Map<string, PluginWithEndpoints>();
  readonly configs: ConfigRows;
  readonly artifacts: ArtifactRows;
  readonly nodes: NodeRows;

  constructor(private readonly orm: Orm) {
    this.configs = new ConfigRows(orm);
    this.artifacts = new ArtifactRows(orm);
    this.nodes = new NodeRows(orm);
  }

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
    await this.orm.transaction((tx) => replaceEndpointsIn(tx, lists));
  }

  /**
   * A new version of an existing plugin: its row changed and its endpoints replaced in one transaction, so
   * a node woken by the change reads both together and no other endpoint write falls between them.
   * Undefined when no row has that name (nothing written).
   */
  async updateWithEndpoints(
    name: string,
    patch: Partial<Omit<NewPluginRow, 'id' | 'name' | 'createdAt'>>,
    endpoints: readonly EndpointInput[],
  ): Promise<PluginRow | undefined> {
    return this.orm.transaction(async (tx) => {
      const rows = await tx.update(plugins).set(patch).where(eq(plugins.name, name)).returning();
      const row = rows[0];
      if (row !== undefined) await replaceEndpointsIn(tx, new Map([[row.id, endpoints]]));
      return row;
    });
  }
}

/** A Drizzle transaction of `Orm`. */
type Tx = Parameters<Parameters<Orm['transaction']>[0]>[0];

/** Replaces the endpoint lists that changed (by plugin id), inside the caller's transaction. */
async function replaceEndpointsIn(tx: Tx, lists: ReadonlyMap<string, readonly EndpointInput[]>): Promise<void> {
  const ids = [...lists.keys()];
  const current = await tx.select().from(pluginEndpoints).where(inArray(pluginEndpoints.pluginId, ids));
  const changed = ids.filter((id) => {
    const want = new Set((lists.get(id) ?? []).map(endpointKey));
    const have = new Set(current.filter((c) => c.pluginId === id).map(endpointKey));
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

/** The rows of `orm.execute()`: postgres.js returns them as the result, PGlite under `rows`. */
function rowsOf(result: unknown): unknown[] {
  return Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? []);
}
