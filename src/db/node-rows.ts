import { and, asc, eq, gt, inArray, lt, type SQL, sql } from 'drizzle-orm';
import { guardConnectionErrors } from './connection-errors.js';
import type { NodeStateRow } from './schema.js';
import { hostNodes, pluginNodeState } from './schema.js';
import type { Orm } from './types.js';

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
 * Owns `host_nodes` (one row per running node, kept alive by its heartbeat) and `plugin_node_state` (what
 * each node observes of each plugin). These are the only tables a node writes on its own account.
 */
export class NodeRows {
  constructor(private readonly orm: Orm) {}

  /** Records a node (or refreshes its address, pid and heartbeat). */
  async register(nodeId: string, address: string, pid: number): Promise<void> {
    await this.orm
      .insert(hostNodes)
      .values({ nodeId, address, pid })
      .onConflictDoUpdate({ target: hostNodes.nodeId, set: { address, pid, heartbeatAt: sql`now()` } });
  }

  async heartbeat(nodeId: string, address: string, pid: number): Promise<void> {
    await this.register(nodeId, address, pid);
  }

  async remove(nodeId: string): Promise<void> {
    await this.orm.delete(hostNodes).where(eq(hostNodes.nodeId, nodeId));
  }

  /** Deletes the rows of nodes whose heartbeat is older than `olderThan` (their observed state cascades). */
  async collectDead(olderThan: Date): Promise<string[]> {
    const rows = await this.orm.delete(hostNodes).where(lt(hostNodes.heartbeatAt, olderThan)).returning({ nodeId: hostNodes.nodeId });
    return rows.map((r) => r.nodeId);
  }

  /** Upserts several plugins' observed state in one statement (at most one entry per node and plugin). */
  async recordStates(states: readonly NodeStateInput[]): Promise<void> {
    if (states.length === 0) return;
    const now = new Date();
    const set: Record<string, SQL> = { updatedAt: sql.raw(`excluded.${pluginNodeState.updatedAt.name}`) };
    for (const key of NODE_STATE_FIELDS) set[key] = sql.raw(`excluded.${pluginNodeState[key].name}`);
    await this.orm
      .insert(pluginNodeState)
      .values(states.map((s) => ({ ...s, updatedAt: now })))
      .onConflictDoUpdate({ target: [pluginNodeState.nodeId, pluginNodeState.pluginName], set });
  }

  async removeStates(nodeId: string, pluginNames: readonly string[]): Promise<void> {
    if (pluginNames.length === 0) return;
    await this.orm
      .delete(pluginNodeState)
      .where(and(eq(pluginNodeState.nodeId, nodeId), inArray(pluginNodeState.pluginName, [...pluginNames])));
  }

  /** Every live node's view of a plugin, or of every plugin (heartbeat within `liveWithinMs`). */
  async views(pluginName: string | undefined, liveWithinMs: number): Promise<NodeView[]> {
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

// Connection failures leave every call as `PH_ERR_DB_UNAVAILABLE` (cause kept): wrapped here, where they enter.
guardConnectionErrors(NodeRows.prototype);
