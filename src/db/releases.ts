import { randomUUID } from 'node:crypto';
import { and, desc, eq, gt, inArray, isNotNull, sql } from 'drizzle-orm';
import { guardConnectionErrors } from './connection-errors.js';
import type { PluginRow, RolloutRow, VersionRow } from './schema.js';
import { hostNodes, pluginNodeState, pluginRollouts, plugins, pluginVersions } from './schema.js';
import type { Orm } from './types.js';

/** A Drizzle transaction of `Orm`. */
type Tx = Parameters<Parameters<Orm['transaction']>[0]>[0];

/** A staged rollout to start: the candidate, where it goes, and how it is judged. */
export interface RolloutInput {
  name: string;
  candidateHash: string;
  candidateVersion: string;
  fromSource: boolean;
  nodes: string[] | null;
  percent: number | null;
  autoPromote: boolean;
  bakeMs: number;
  startedBy: string;
}

/** Why a write of a pin or a rollout did not happen: the plugin is unknown, or another change holds it. */
export type Refusal = 'not-found' | 'rollout-in-progress' | 'no-rollout' | 'nothing-serves' | 'changed-meanwhile';

/**
 * Owns the version history (`plugin_versions`), the pins (`plugins.pinned_*`) and the staged rollouts
 * (`plugin_rollouts`). Every write that changes what a plugin serves runs in one transaction holding the
 * plugin's row (`FOR UPDATE`): two admins racing on one plugin are serialized, and the second finds the
 * first's change and is refused.
 */
export class ReleaseRepository {
  constructor(private readonly orm: Orm) {}

  /** The versions recorded for a plugin, newest first. */
  async versions(name: string): Promise<VersionRow[]> {
    return this.orm
      .select()
      .from(pluginVersions)
      .where(eq(pluginVersions.pluginName, name))
      .orderBy(desc(pluginVersions.createdAt), desc(pluginVersions.hash));
  }

  /** One recorded version by hash, or the newest recorded under a semver `version`. */
  async findVersion(name: string, by: { version?: string; hash?: string }): Promise<VersionRow | undefined> {
    const rows = await this.orm
      .select()
      .from(pluginVersions)
      .where(
        and(
          eq(pluginVersions.pluginName, name),
          by.hash !== undefined ? eq(pluginVersions.hash, by.hash) : eq(pluginVersions.version, by.version ?? ''),
        ),
      )
      .orderBy(desc(pluginVersions.createdAt))
      .limit(1);
    return rows[0];
  }

  /** The metadata recorded for each of `versions` (plugin and hash), by `name\0hash`. */
  async metadataOf(versions: ReadonlyArray<{ name: string; hash: string }>): Promise<Map<string, unknown>> {
    if (versions.length === 0) return new Map();
    const rows = await this.orm
      .select({ name: pluginVersions.pluginName, hash: pluginVersions.hash, metadata: pluginVersions.metadata })
      .from(pluginVersions)
      .where(inArray(pluginVersions.hash, [...new Set(versions.map((v) => v.hash))]));
    const wanted = new Set(versions.map((v) => `${v.name}\0${v.hash}`));
    const out = new Map<string, unknown>();
    for (const r of rows) {
      const key = `${r.name}\0${r.hash}`;
      if (wanted.has(key)) out.set(key, r.metadata);
    }
    return out;
  }

  /** Live nodes (heartbeat newer than `liveSince`) serving each hash of a plugin. */
  async servingNodes(name: string, liveSince: Date): Promise<Map<string, string[]>> {
    const rows = await this.orm
      .select({ nodeId: pluginNodeState.nodeId, hash: pluginNodeState.servingHash })
      .from(pluginNodeState)
      .innerJoin(hostNodes, eq(hostNodes.nodeId, pluginNodeState.nodeId))
      .where(and(eq(pluginNodeState.pluginName, name), isNotNull(pluginNodeState.servingHash), gt(hostNodes.heartbeatAt, liveSince)))
      .orderBy(pluginNodeState.nodeId);
    const out = new Map<string, string[]>();
    for (const r of rows) out.set(r.hash as string, [...(out.get(r.hash as string) ?? []), r.nodeId]);
    return out;
  }

  /** Ids of the live nodes (a percentage rollout shows which of them it picked). */
  async liveNodes(liveSince: Date): Promise<string[]> {
    const rows = await this.orm
      .select({ nodeId: hostNodes.nodeId })
      .from(hostNodes)
      .where(gt(hostNodes.heartbeatAt, liveSince))
      .orderBy(hostNodes.nodeId);
    return rows.map((r) => r.nodeId);
  }

  /**
   * Pins a plugin to a stored version; refused while a rollout of it is in its canary stage, and, with `seen`
   * (the row's `updated_at` when the caller read it), when the row changed since: of two admins pinning at
   * once, the second finds the first's pin and is refused instead of silently replacing it.
   */
  async pin(name: string, hash: string, version: string, seen?: Date): Promise<PluginRow | Refusal> {
    return this.orm.transaction(async (tx) => {
      const [row] = await tx.select().from(plugins).where(eq(plugins.name, name)).for('update');
      if (row === undefined) return 'not-found';
      if (seen !== undefined && row.updatedAt.getTime() !== seen.getTime()) return 'changed-meanwhile';
      const [r] = await tx.select().from(pluginRollouts).where(eq(pluginRollouts.pluginId, row.id));
      if (r?.state === 'canary') return 'rollout-in-progress';
      const [updated] = await tx
        .update(plugins)
        .set({ pinnedHash: hash, pinnedVersion: version })
        .where(eq(plugins.id, row.id))
        .returning();
      return updated as PluginRow;
    });
  }

  /** Starts a rollout (replacing the plugin's finished one); refused while another is in its canary stage. */
  async startRollout(input: RolloutInput): Promise<RolloutRow | Refusal> {
    return this.orm.transaction(async (tx) => {
      const [row] = await tx.select().from(plugins).where(eq(plugins.name, input.name)).for('update');
      if (row === undefined) return 'not-found';
      const [r] = await tx.select().from(pluginRollouts).where(eq(pluginRollouts.pluginId, row.id));
      if (r?.state === 'canary') return 'rollout-in-progress';
      // what every other node keeps serving meanwhile: the pinned version, else the published one
      const previousHash = row.pinnedHash ?? row.artifactHash;
      if (previousHash === null) return 'nothing-serves';
      const previousVersion = row.pinnedHash !== null ? (row.pinnedVersion ?? row.version) : row.version;
      await tx.delete(pluginRollouts).where(eq(pluginRollouts.pluginId, row.id));
      const [created] = await tx
        .insert(pluginRollouts)
        .values({
          id: randomUUID(),
          pluginId: row.id,
          name: input.name,
          candidateHash: input.candidateHash,
          candidateVersion: input.candidateVersion,
          previousHash,
          previousVersion,
          fromSource: input.fromSource,
          nodes: input.nodes,
          percent: input.percent,
          state: 'canary',
          autoPromote: input.autoPromote,
          bakeMs: input.bakeMs,
          startedBy: input.startedBy,
        })
        .returning();
      return created as RolloutRow;
    });
  }

  /**
   * Makes the candidate what every node serves. A candidate built from the current source becomes the
   * published version (and any pin goes); a stored one is pinned. `id`, when given, must be the rollout's.
   */
  promote(name: string, reason: string, id?: string): Promise<RolloutRow | Refusal> {
    return this.endCanary(name, 'promoted', reason, id, async (tx, row, r) => {
      await tx
        .update(plugins)
        .set(
          r.fromSource
            ? { artifactHash: r.candidateHash, version: r.candidateVersion, pinnedHash: null, pinnedVersion: null }
            : { pinnedHash: r.candidateHash, pinnedVersion: r.candidateVersion },
        )
        .where(eq(plugins.id, row.id));
    });
  }

  /**
   * Ends a rollout in its canary stage: the canary nodes go back to the previous version. A candidate built
   * from the current source leaves that source behind it, so the previous version is pinned (unless a pin is
   * there already): a source node would otherwise serve the aborted candidate again.
   */
  abort(name: string, reason: string, id?: string): Promise<RolloutRow | Refusal> {
    return this.endCanary(name, 'aborted', reason, id, async (tx, row, r) => {
      if (r.fromSource && row.pinnedHash === null) {
        await tx.update(plugins).set({ pinnedHash: r.previousHash, pinnedVersion: r.previousVersion }).where(eq(plugins.id, row.id));
      }
    });
  }

  /**
   * Ends the plugin's rollout in its canary stage as `state` (`id`, when given, must be the rollout's) and
   * lets `then` change the plugin's row in the same transaction, under the row's lock.
   */
  private endCanary(
    name: string,
    state: 'promoted' | 'aborted',
    reason: string,
    id: string | undefined,
    then: (tx: Tx, row: PluginRow, r: RolloutRow) => Promise<void>,
  ): Promise<RolloutRow | Refusal> {
    return this.orm.transaction(async (tx) => {
      const [row] = await tx.select().from(plugins).where(eq(plugins.name, name)).for('update');
      if (row === undefined) return 'not-found';
      const [r] = await tx
        .update(pluginRollouts)
        .set({ state, reason, endedAt: sql`now()` })
        .where(
          and(
            eq(pluginRollouts.pluginId, row.id),
            eq(pluginRollouts.state, 'canary'),
            id === undefined ? undefined : eq(pluginRollouts.id, id),
          ),
        )
        .returning();
      if (r === undefined) return 'no-rollout';
      await then(tx, row, r);
      return r;
    });
  }

  async rollout(name: string): Promise<RolloutRow | undefined> {
    const rows = await this.orm.select().from(pluginRollouts).where(eq(pluginRollouts.name, name));
    return rows[0];
  }

  /**
   * Trims each plugin's history to its `kept` newest versions, keeping older ones that are published, pinned,
   * part of a rollout or served by a live node. Returns what was deleted; the artifacts of those versions are
   * then unreferenced, and collected.
   */
  async trimVersions(kept: number, liveSince: Date): Promise<Array<{ plugin: string; hash: string; version: string }>> {
    const all = await this.orm
      .select({ plugin: pluginVersions.pluginName, hash: pluginVersions.hash, version: pluginVersions.version })
      .from(pluginVersions)
      .orderBy(pluginVersions.pluginName, desc(pluginVersions.createdAt), desc(pluginVersions.hash));
    const seen = new Map<string, number>();
    const excess = all.filter((v) => {
      const n = (seen.get(v.plugin) ?? 0) + 1;
      seen.set(v.plugin, n);
      return n > kept;
    });
    if (excess.length === 0) return [];
    const used = new Set<string>();
    for (const p of await this.orm.select({ a: plugins.artifactHash, b: plugins.pinnedHash }).from(plugins)) {
      if (p.a !== null) used.add(p.a);
      if (p.b !== null) used.add(p.b);
    }
    for (const r of await this.orm.select({ a: pluginRollouts.candidateHash, b: pluginRollouts.previousHash }).from(pluginRollouts)) {
      used.add(r.a);
      used.add(r.b);
    }
    const served = await this.orm
      .select({ hash: pluginNodeState.servingHash })
      .from(pluginNodeState)
      .innerJoin(hostNodes, eq(hostNodes.nodeId, pluginNodeState.nodeId))
      .where(and(isNotNull(pluginNodeState.servingHash), gt(hostNodes.heartbeatAt, liveSince)));
    for (const s of served) if (s.hash !== null) used.add(s.hash);
    const gone = excess.filter((v) => !used.has(v.hash));
    for (const v of gone) {
      await this.orm.delete(pluginVersions).where(and(eq(pluginVersions.pluginName, v.plugin), inArray(pluginVersions.hash, [v.hash])));
    }
    return gone;
  }
}

// Connection failures leave every call as `PH_ERR_DB_UNAVAILABLE` (cause kept): wrapped here, where they enter.
guardConnectionErrors(ReleaseRepository.prototype);
