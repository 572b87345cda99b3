import { and, eq, sql } from 'drizzle-orm';
import type { JsonObject } from '../config/plugins/json.js';
import { guardConnectionErrors } from './connection-errors.js';
import type { PluginConfigRow } from './schema.js';
import { pluginConfigs, plugins } from './schema.js';
import type { Orm } from './types.js';

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

/** The outcome of a configuration write. */
export type ConfigWrite =
  | { outcome: 'written' | 'unchanged'; stored: StoredConfig }
  /** `expectedRevision` was not the stored revision: nothing written. */
  | { outcome: 'conflict'; stored: StoredConfig }
  /** No plugin of that name. */
  | { outcome: 'missing' };

/**
 * Owns `plugin_configs`: one stored configuration per plugin. The reconcile reads a configuration with its
 * plugin row (see `PluginRepository`); this family reads and writes it alone, for the admin path.
 */
export class ConfigRows {
  constructor(private readonly orm: Orm) {}

  /** The stored configuration of `name` (`NO_STORED_CONFIG` when none is), or undefined when no such plugin is registered. */
  async get(name: string): Promise<StoredConfig | undefined> {
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
  async put(name: string, values: JsonObject, by: string, expectedRevision?: number): Promise<ConfigWrite> {
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
    const now = await this.get(name);
    if (now === undefined) return { outcome: 'missing' };
    if (expectedRevision !== undefined && now.revision !== expectedRevision) return { outcome: 'conflict', stored: now };
    return { outcome: 'unchanged', stored: now };
  }
}

// Connection failures leave every call as `PH_ERR_DB_UNAVAILABLE` (cause kept): wrapped here, where they enter.
guardConnectionErrors(ConfigRows.prototype);

/** A configuration row as its stored configuration (`NO_STORED_CONFIG` for none). */
export function storedOf(c: PluginConfigRow | null): StoredConfig {
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
