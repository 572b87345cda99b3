import type { NodeView, PluginWithEndpoints, RolloutRow, StoredConfig } from '../db/index.js';
import type { RecordedError } from '../errors/index.js';
import type { PluginSnapshot } from '../manager/index.js';
import type { PluginDetail } from '../model/answers.js';
import { isCanaryNode } from '../releases/selection.js';

/** The seed's field names, plus what this host adds (what serves here, last error, every node's view). */
export function pluginView(
  row: Omit<PluginWithEndpoints, 'config'> & { config?: StoredConfig },
  local: PluginSnapshot | undefined,
  nodes: NodeView[] | undefined,
  nodeId: string,
): PluginDetail {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    version: row.version,
    author: row.author,
    type: row.type,
    path: row.path,
    status: row.status,
    endpoints: row.endpoints.map((e) => ({ method: e.method, path: e.path, handler: e.handler, type: e.type })),
    binary_path: row.binaryPath,
    source_path: row.sourcePath,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    artifact_hash: row.artifactHash,
    generation: row.generation,
    isolation: row.isolation,
    // the desired configuration's revision (null: nothing stored); its values are read with the admin token
    config_revision: row.config === undefined || row.config.revision === 0 ? null : row.config.revision,
    pinned: row.pinnedHash === null ? null : (row.pinnedVersion ?? row.version),
    pinned_hash: row.pinnedHash,
    rollout: row.rollout == null ? null : rolloutView(row.rollout, nodes),
    registered: true,
    state: local?.state ?? 'unloaded',
    serving: local?.serving ?? null,
    last_error: local?.last_error ?? null,
    note: local?.note ?? null,
    node_id: nodeId,
    ...(nodes === undefined
      ? {}
      : {
          nodes: nodes.map((n) => ({
            node_id: n.nodeId,
            address: n.address,
            state: n.state,
            serving_version: n.servingVersion,
            serving_hash: n.servingHash,
            isolation: n.isolation,
            serving_config_revision: n.servingConfigRevision,
            note: n.note,
            failed_version: n.failedVersion,
            failed_hash: n.failedHash,
            last_error:
              n.lastError === null ? null : { code: n.lastErrorCode, message: n.lastError, at: n.lastErrorAt?.toISOString() ?? null },
            updated_at: n.updatedAt.toISOString(),
            heartbeat_at: n.heartbeatAt.toISOString(),
          })),
        }),
  };
}

/**
 * A staged rollout: its candidate, where it goes (a percentage shows the live nodes it picks among those
 * known to serve the plugin), its state and, once ended, why.
 */
export function rolloutView(r: RolloutRow, nodes: NodeView[] | undefined): Record<string, unknown> {
  return {
    candidate_version: r.candidateVersion,
    candidate_hash: r.candidateHash,
    previous_version: r.previousVersion,
    previous_hash: r.previousHash,
    nodes: r.nodes ?? nodes?.map((n) => n.nodeId).filter((id) => isCanaryNode(r, id)) ?? null,
    percent: r.percent,
    from_source: r.fromSource,
    auto_promote: r.autoPromote,
    bake_ms: r.bakeMs,
    state: r.state,
    reason: r.reason,
    started_by: r.startedBy,
    started_at: r.startedAt.toISOString(),
    ended_at: r.endedAt?.toISOString() ?? null,
  };
}

/** A directory discovery found but could not register: shown with its error, so a person can act on it. */
export function unregisteredView(name: string, e: RecordedError & { source_path: string }, stale: boolean): Record<string, unknown> {
  return { name, registered: false, status: null, state: 'error', source_path: e.source_path, last_error: e, endpoints: [], stale };
}
