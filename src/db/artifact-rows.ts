import { and, eq, gt, inArray, isNotNull, lt, notExists, or, type SQL, sql } from 'drizzle-orm';
import { guardConnectionErrors } from './connection-errors.js';
import type { NewPluginRow } from './schema.js';
import { hostNodes, pluginArtifacts, pluginNodeState, pluginRollouts, pluginSources, plugins, pluginVersions } from './schema.js';
import type { Orm } from './types.js';

export interface ArtifactRecord {
  hash: string;
  pluginName: string;
  version: string;
  format: string;
  bundle: string;
  /** Hex SHA-256 of `bundle`. */
  sha256: string;
}

/** Who published a version, and how: recorded with it in the version history. */
export interface VersionRecord {
  metadata: Record<string, unknown>;
  publishedBy: string;
  action: string;
}

/** The row a publication names its artifact in, and what it changes there (its hash, version and so on). */
export interface ArtifactRowUpdate {
  name: string;
  patch: Partial<Omit<NewPluginRow, 'id' | 'name' | 'createdAt'>>;
}

/**
 * Owns `plugin_artifacts` (compiled bundles, by content hash) and `plugin_sources` (uploaded archives):
 * what a node loads, stored once for every node, and what the janitor may collect.
 */
export class ArtifactRows {
  constructor(private readonly orm: Orm) {}

  /** The SHA-256 recorded for an artifact, or undefined when it is not in the store. */
  async digest(hash: string): Promise<string | undefined> {
    const rows = await this.orm.select({ sha256: pluginArtifacts.sha256 }).from(pluginArtifacts).where(eq(pluginArtifacts.hash, hash));
    return rows[0]?.sha256;
  }

  /** The SHA-256 recorded for each of `hashes` that is in the store. */
  async digests(hashes: readonly string[]): Promise<Map<string, string>> {
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
  async put(a: ArtifactRecord, record?: VersionRecord, row?: ArtifactRowUpdate): Promise<void> {
    const then = row === undefined ? sql`SELECT 1` : this.orm.update(plugins).set(row.patch).where(eq(plugins.name, row.name)).getSQL();
    await this.orm.execute(sql`WITH ${publicationCtes(a, record)} ${then}`);
  }

  async get(hash: string): Promise<ArtifactRecord | undefined> {
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

  /**
   * Deletes artifacts created before `olderThan` that nothing refers to: no plugin row names (or pins) them,
   * no kept version or rollout names them, and no node whose heartbeat is newer than `liveSince` serves them. Returns the hashes deleted.
   */
  async collect(olderThan: Date, liveSince: Date): Promise<string[]> {
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
  async referenced(liveSince: Date): Promise<Set<string>> {
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
}

// Connection failures leave every call as `PH_ERR_DB_UNAVAILABLE` (cause kept): wrapped here, where they enter.
guardConnectionErrors(ArtifactRows.prototype);

/** The artifact and, with `record`, its version-history entry, as the CTEs of a publishing statement. */
export function publicationCtes(a: ArtifactRecord, record: VersionRecord | undefined): SQL {
  const artifact = sql`INSERT INTO ${pluginArtifacts} (hash, plugin_name, version, format, bundle, sha256, size)
      VALUES (${a.hash}, ${a.pluginName}, ${a.version}, ${a.format}, ${a.bundle}, ${a.sha256}, ${Buffer.byteLength(a.bundle)})
      ON CONFLICT DO NOTHING`;
  if (record === undefined) return sql`artifact AS (${artifact})`;
  const version = sql`INSERT INTO ${pluginVersions} (plugin_name, hash, version, sha256, metadata, published_by, action)
      VALUES (${a.pluginName}, ${a.hash}, ${a.version}, ${a.sha256}, ${JSON.stringify(record.metadata)}::jsonb, ${record.publishedBy}, ${record.action})
      ON CONFLICT DO NOTHING`;
  return sql`artifact AS (${artifact}), version AS (${version})`;
}
