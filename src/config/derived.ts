/** Settings computed from others: each rule is written here once, not where it is used. */
export interface DerivedSettings {
  /** Heartbeat period of this node in the nodes table. */
  heartbeatMs: number;
  /** A node whose heartbeat is older than this is not live (not shown, what it serves not kept): three missed beats, at least 15 s. */
  liveWithinMs: number;
  /** A canary node's health check of a candidate: the hook limit, at most 2 s (it runs every check interval). */
  canaryHealthTimeoutMs: number;
  /** An admin write waits this long for this node to apply it: a drain, a few hooks and a margin. */
  settleTimeoutMs: number;
  /** How often a listener checks its request and header deadlines (Node's default, 30 s, would let a slow client linger). */
  connectionsCheckingIntervalMs: number;
}

/** The time limit of a plugin's hooks (`initialize`, `cleanup`, health) unless `HOOK_TIMEOUT_MS` says otherwise. */
export const DEFAULT_HOOK_TIMEOUT_MS = 5000;

/** The heartbeat period when none is given (tests shorten it). */
export const DEFAULT_HEARTBEAT_MS = 5000;

/** How often unreferenced artifacts and dead nodes' rows are collected. */
export const JANITOR_INTERVAL_MS = 10 * 60_000;

/** A node whose heartbeat is older than this is not live (the CLI, which has no heartbeat, uses the default). */
export function liveWithinMs(heartbeatMs = DEFAULT_HEARTBEAT_MS): number {
  return Math.max(15_000, heartbeatMs * 3);
}

/** The settings the derived ones come from (a part of `HostConfig`, named here so this file imports nothing). */
export interface DerivedFrom {
  hookTimeoutMs: number;
  drainTimeoutMs: number;
  headersTimeoutMs: number;
}

export function deriveSettings(c: DerivedFrom, heartbeatMs = DEFAULT_HEARTBEAT_MS): DerivedSettings {
  return {
    heartbeatMs,
    liveWithinMs: liveWithinMs(heartbeatMs),
    canaryHealthTimeoutMs: Math.min(c.hookTimeoutMs, 2000),
    settleTimeoutMs: c.drainTimeoutMs + 4 * c.hookTimeoutMs + 5000,
    connectionsCheckingIntervalMs: Math.max(250, Math.min(2000, Math.floor(c.headersTimeoutMs / 2))),
  };
}
