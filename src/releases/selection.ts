import { createHash } from 'node:crypto';
import type { PluginRow, RolloutRow } from '../db/index.js';

/**
 * Whether a percentage rollout picks `nodeId` for `plugin`: a stable hash of both, mapped onto 0..99, below
 * `percent`. Every node decides for itself and always the same way, so the chosen nodes stay chosen across
 * restarts, and a plugin's canaries do not always land on the same nodes as another plugin's.
 */
export function chosenByPercent(nodeId: string, plugin: string, percent: number): boolean {
  const h = createHash('sha256').update(`${plugin}\u0000${nodeId}`).digest();
  return h.readUInt32BE(0) % 100 < percent;
}

/** Whether `nodeId` is one of the rollout's canary nodes (named, or picked by percentage). */
export function isCanaryNode(r: RolloutRow, nodeId: string): boolean {
  if (r.nodes !== null) return r.nodes.includes(nodeId);
  return r.percent !== null && chosenByPercent(nodeId, r.name, r.percent);
}

/**
 * What a node serves of a plugin when a pin or a rollout decides it rather than the source: a canary node
 * serves the candidate of a rollout in its canary stage, every other node the rollout's previous version;
 * otherwise a pinned plugin serves its pinned version. Undefined: the usual rule (source, else the published artifact).
 */
export type ReleaseTarget =
  | { kind: 'canary'; hash: string; rollout: RolloutRow }
  | { kind: 'baseline'; hash: string; rollout: RolloutRow }
  | { kind: 'pinned'; hash: string };

export function targetFor(row: PluginRow & { rollout?: RolloutRow | null }, nodeId: string): ReleaseTarget | undefined {
  if (row.type !== 'dynamic') return undefined;
  const r = row.rollout;
  if (r != null && r.state === 'canary') {
    return isCanaryNode(r, nodeId)
      ? { kind: 'canary', hash: r.candidateHash, rollout: r }
      : { kind: 'baseline', hash: r.previousHash, rollout: r };
  }
  if (row.pinnedHash !== null) return { kind: 'pinned', hash: row.pinnedHash };
  return undefined;
}
