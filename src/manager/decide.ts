import type { PluginWithEndpoints } from '../db/index.js';
import { HostError } from '../errors/index.js';
import { isValidPluginName, PLUGIN_STATUSES, type PluginStatus } from '../model/index.js';
import { type ReleaseTarget, targetFor } from '../releases/selection.js';
import type { PluginState } from './state.js';

/**
 * What one reconcile step needs to know of this node's record of a plugin: the part of `PluginRecord`
 * a decision reads (so a test can write one as a literal).
 */
export interface ObservedFacts {
  readonly state: PluginState;
  readonly serving: { readonly hash: string; readonly runtime: string; readonly failure?: HostError | undefined } | undefined;
  readonly servingGeneration: number;
  readonly servingConfigRevision: number;
  readonly servingFrom: string | undefined;
  readonly lastError: { readonly code: string; readonly message: string } | undefined;
  readonly failedFingerprint: string | undefined;
}

/** The desired row (undefined: deleted) and what this node observes of it (undefined: never known here). */
export interface DecisionInput {
  nodeId: string;
  row: PluginWithEndpoints | undefined;
  observed: ObservedFacts | undefined;
  /** What the code to serve resolved to, once the step `resolve` ran; or how resolving it failed. */
  resolution?: { ok: true; hash: string; mode: string } | { ok: false; error: unknown; sourceError: boolean; dbUnavailable: boolean };
}

/**
 * The next thing a reconcile run does. Steps marked *continue* change what this node observes and are
 * followed by another decision; every other step ends the run.
 */
export type Decision =
  /** Never known here and not in the database: nothing to undo. */
  | { kind: 'ignore' }
  /** *Continue.* The serving version failed for good: take it out, and do not load this desired state again. */
  | { kind: 'take-out-crashed'; failedKey: string }
  /** The row is gone (`deleted`) or inactive (`disabled`): unload whatever serves. */
  | { kind: 'unload'; reason: 'deleted' | 'disabled' }
  /** The row itself is invalid: record the error (never retried until the row changes). */
  | { kind: 'refuse'; error: HostError; failedKey: string }
  /**
   * *Continue.* Resolve the code to serve (compile, or fetch a stored version). With `mayBeUnchanged`,
   * a source compiled and published here may be the one serving: the run stops if its hash is unchanged.
   */
  | { kind: 'resolve'; target: ReleaseTarget | undefined; mayBeUnchanged: boolean }
  /** A lost database is not the plugin's fault: the scheduler retries the run. */
  | { kind: 'retry-later'; error: unknown }
  /** A stored version (pin or rollout) could not be resolved: record it; a canary aborts its rollout. */
  | { kind: 'fail-release'; target: ReleaseTarget; failedKey: string }
  /** The source failed and nothing serves: serve the published artifact meanwhile, recording the error. */
  | { kind: 'fall-back' }
  /** The source failed: record it. */
  | { kind: 'fail-source' }
  /** Only the configuration changed: the serving code takes it. */
  | { kind: 'reconfigure'; target: ReleaseTarget | undefined; fingerprint: string }
  /** What serves is what is desired; `confirm`: it serves, so publish its desired rows and drop a stale error. */
  | { kind: 'keep'; target: ReleaseTarget | undefined; confirm: boolean }
  /** This desired state failed already: wait for a change. `sameCode`: the serving code is the one desired. */
  | { kind: 'wait'; target: ReleaseTarget | undefined; sameCode: boolean; canaryFailed: boolean }
  /** Load the desired version (beside what serves, then swap). */
  | { kind: 'load'; target: ReleaseTarget | undefined; fingerprint: string };

/**
 * Decides the next step of one reconcile run from the desired row and this node's observed state. Pure: no
 * I/O, no clock; the manager carries the step out (`PluginManager.reconcileOnce`) and asks again while the
 * step continues the run.
 */
export function decide(input: DecisionInput): Decision {
  const { row, observed: rec } = input;
  if (row === undefined && rec === undefined) return { kind: 'ignore' };
  const serving = rec?.serving;
  if (rec !== undefined && serving?.failure !== undefined) {
    return {
      kind: 'take-out-crashed',
      failedKey: `${fingerprintOf(serving.hash, rec.servingGeneration, serving.runtime)}:${rec.servingConfigRevision}`,
    };
  }
  if (row === undefined) return { kind: 'unload', reason: 'deleted' };
  if (row.status === 'inactive') return { kind: 'unload', reason: 'disabled' };
  if (!PLUGIN_STATUSES.includes(row.status as PluginStatus)) {
    const error = new HostError(
      'PH_ERR_DESIRED_STATE_INVALID',
      `${row.name}: unknown status "${row.status}" (expected active or inactive)`,
    );
    return { kind: 'refuse', error, failedKey: `status:${row.status}` };
  }
  if (!isValidPluginName(row.name)) {
    return {
      kind: 'refuse',
      error: new HostError('PH_ERR_PLUGIN_NAME_INVALID', `${row.name}: not a valid plugin name`),
      failedKey: 'name',
    };
  }
  // A pin or a rollout names a stored version, served from the verified artifact store whether or not the source is here.
  const target = targetFor(row, input.nodeId);
  const r = input.resolution;
  if (r === undefined) return { kind: 'resolve', target, mayBeUnchanged: target === undefined && mayBeUnchanged(row, rec) };
  if (!r.ok) {
    if (r.dbUnavailable) return { kind: 'retry-later', error: r.error };
    if (target !== undefined) return { kind: 'fail-release', target, failedKey: `release:${target.kind}:${target.hash}:${row.generation}` };
    const fallBack = serving === undefined && row.type === 'dynamic' && row.artifactHash !== null && r.sourceError;
    return { kind: fallBack ? 'fall-back' : 'fail-source' };
  }
  // The code, the generation, the runtime and the configuration revision: a change of any is a new desired state.
  const code = fingerprintOf(r.hash, row.generation, r.mode);
  const fingerprint = `${code}:${row.config.revision}`;
  if (rec !== undefined && serving !== undefined && fingerprintOf(serving.hash, rec.servingGeneration, serving.runtime) === code) {
    if (rec.servingConfigRevision !== row.config.revision) {
      if (rec.failedFingerprint === fingerprint) return { kind: 'wait', target, sameCode: true, canaryFailed: false };
      return { kind: 'reconfigure', target, fingerprint };
    }
    return { kind: 'keep', target, confirm: rec.state === 'serving' };
  }
  if (rec?.failedFingerprint === fingerprint) {
    // a candidate known to fail here fails a new rollout too
    return { kind: 'wait', target, sameCode: false, canaryFailed: target?.kind === 'canary' && rec.lastError !== undefined };
  }
  return { kind: 'load', target, fingerprint };
}

/**
 * Whether a version this node compiled from its source may still be what the row asks for: the row names
 * the serving artifact, generation and configuration, and nothing failed. Whether the source on disk still
 * hashes to it, the runtime and the publication are for the manager to check (they need the disk).
 */
function mayBeUnchanged(row: PluginWithEndpoints, rec: ObservedFacts | undefined): boolean {
  const s = rec?.serving;
  if (rec === undefined || s === undefined || rec.state !== 'serving' || rec.servingFrom !== 'source' || rec.lastError !== undefined)
    return false;
  if (row.type !== 'dynamic' || row.sourceArchive !== null || row.artifactHash !== s.hash) return false;
  return row.generation === rec.servingGeneration && row.config.revision === rec.servingConfigRevision;
}

/** What decides whether a version must be (re)loaded: the artifact, the row's generation and the runtime. */
export function fingerprintOf(hash: string, generation: number, mode: string): string {
  return `${hash}:${generation}:${mode}`;
}
