import type { NodeView, PluginRepository } from '../db/index.js';
import { describeError } from '../errors/index.js';
import type { PluginManager, PluginSnapshot } from '../manager/index.js';

/** One node's view of one plugin, as `GET /plugins/:name` shows it in `nodes` (without the node's address). */
export interface NodePluginState {
  node_id: string;
  state: string;
  serving_version: string | null;
  serving_hash: string | null;
  /** The configuration revision the serving version runs with (0: none stored). */
  serving_config_revision: number | null;
  failed_version: string | null;
  last_error: { code: string | null; message: string; at: string | null } | null;
  updated_at: string | null;
}

export interface ClusterNode {
  node_id: string;
  address: string;
  heartbeat_at: string | null;
  self: boolean;
}

/** Every live node and every plugin's state on each: what the console shows in its node cells. */
export interface ClusterView {
  node_id: string;
  /** True when the database could not be read: only this node's own view is shown. */
  stale: boolean;
  nodes: ClusterNode[];
  plugins: Record<string, NodePluginState[]>;
}

function fromRow(v: NodeView): NodePluginState {
  return {
    node_id: v.nodeId,
    state: v.state,
    serving_version: v.servingVersion,
    serving_hash: v.servingHash,
    serving_config_revision: v.servingConfigRevision,
    failed_version: v.failedVersion,
    last_error: v.lastError === null ? null : { code: v.lastErrorCode, message: v.lastError, at: v.lastErrorAt?.toISOString() ?? null },
    updated_at: v.updatedAt.toISOString(),
  };
}

function fromSnapshot(nodeId: string, s: PluginSnapshot): NodePluginState {
  const e = s.last_error;
  return {
    node_id: nodeId,
    state: s.state,
    serving_version: s.serving?.version ?? null,
    serving_hash: s.serving?.hash ?? null,
    serving_config_revision: s.serving?.config_revision ?? null,
    failed_version: e?.version ?? null,
    last_error: e === null ? null : { code: e.code, message: e.message, at: e.at },
    updated_at: null,
  };
}

/**
 * One read of the observed-state table for every plugin and live node. This node's own
 * entries come from its manager, not from the table: the manager announces a change before
 * it has written it, and a page reading right after the announcement must see it.
 */
export async function clusterView(o: {
  repo: PluginRepository;
  manager: PluginManager;
  nodeId: string;
  liveWithinMs: number;
  onStale?: (err: string) => void;
}): Promise<ClusterView> {
  let rows: NodeView[] = [];
  let stale = false;
  try {
    rows = await o.repo.nodes.views(undefined, o.liveWithinMs);
  } catch (err) {
    stale = true;
    o.onStale?.(describeError(err));
  }
  const nodes = new Map<string, ClusterNode>();
  nodes.set(o.nodeId, { node_id: o.nodeId, address: '', heartbeat_at: null, self: true });
  // a Map, not an object: a name written into the table by hand may be `__proto__`
  const plugins = new Map<string, NodePluginState[]>();
  const entriesOf = (name: string): NodePluginState[] => {
    let list = plugins.get(name);
    if (list === undefined) {
      list = [];
      plugins.set(name, list);
    }
    return list;
  };
  for (const r of rows) {
    const n = nodes.get(r.nodeId);
    if (n === undefined) {
      nodes.set(r.nodeId, { node_id: r.nodeId, address: r.address, heartbeat_at: r.heartbeatAt.toISOString(), self: false });
    } else if (n.self) {
      n.address = r.address;
      n.heartbeat_at = r.heartbeatAt.toISOString();
    }
    if (r.nodeId === o.nodeId) continue;
    entriesOf(r.pluginName).push(fromRow(r));
  }
  for (const s of o.manager.snapshots()) entriesOf(s.name).unshift(fromSnapshot(o.nodeId, s));
  // this node first, then the others by id (the table's order)
  const ordered = [...nodes.values()].sort((a, b) => (a.self ? -1 : b.self ? 1 : a.node_id < b.node_id ? -1 : 1));
  return { node_id: o.nodeId, stale, nodes: ordered, plugins: Object.fromEntries(plugins) };
}
