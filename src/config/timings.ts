// Time windows derived from others, each written once: every part that needs one asks here.

/** The time limit of a plugin's hooks (`initialize`, `cleanup`, health) unless `HOOK_TIMEOUT_MS` says otherwise. */
export const DEFAULT_HOOK_TIMEOUT_MS = 5000;

/** How often a node refreshes its row in `host_nodes` (its heartbeat). */
export const HEARTBEAT_MS = 5000;

/**
 * A node whose heartbeat is older than this is not live (not shown, what it serves not kept): three
 * heartbeats missed, and never under 15 s, so a node busy with a slow start is not taken for gone.
 */
export function livenessWindowMs(heartbeatMs: number = HEARTBEAT_MS): number {
  return Math.max(15_000, heartbeatMs * 3);
}
