import type { FastifyBaseLogger } from 'fastify';
import type { ReleaseRepository, RolloutRow } from '../db/index.js';
import { describeError } from '../errors/index.js';
import type { LoadedVersion } from '../runtime/index.js';
import type { RolloutDecisions } from './decisions.js';
import type { ReleaseTarget } from './selection.js';

export interface CanaryWatchOptions {
  nodeId: string;
  releases: ReleaseRepository;
  decisions: RolloutDecisions;
  log: FastifyBaseLogger;
  /** How often the candidate's health check runs and its 5xx ratio is judged. */
  checkIntervalMs: number;
  /** Bound on one health check. */
  healthTimeoutMs: number;
  /** Percentage points of 5xx answers the candidate may have above the previous version's. */
  max5xxPercent: number;
  /** Answers the candidate must have given before its ratio is judged. */
  minRequests: number;
}

/** One candidate baking on this node. */
interface Bake {
  rollout: RolloutRow;
  candidate: LoadedVersion;
  /** The version the candidate replaced here (its 5xx ratio is the reference); undefined after a restart. */
  previous: LoadedVersion | undefined;
  endsAt: number;
  timer: NodeJS.Timeout;
  busy: boolean;
}

/**
 * The bake period on a canary node: while a rollout is in its canary stage and this node serves the
 * candidate, its health check runs every few seconds and its 5xx ratio is compared with the previous
 * version's; a failing check, a ratio over the threshold, or a candidate that fails to load here aborts the
 * rollout (a conditional write: of several canary nodes, the first decides). After the bake period a healthy
 * candidate is promoted when the rollout asked for it, else it stays a canary until an admin decides.
 */
export class CanaryWatch {
  private readonly bakes = new Map<string, Bake>();
  private stopped = false;

  constructor(private readonly o: CanaryWatchOptions) {}

  /** After each reconcile of `name`: what serves here and why. Starts or ends the bake of this node. */
  observe(name: string, target: ReleaseTarget | undefined, serving: LoadedVersion | undefined, before: LoadedVersion | undefined): void {
    const b = this.bakes.get(name);
    if (this.stopped || target?.kind !== 'canary' || serving === undefined || serving.hash !== target.hash) {
      if (b !== undefined) this.end(name, b);
      return;
    }
    if (b !== undefined && b.rollout.id === target.rollout.id && b.candidate === serving) return;
    // the same rollout with a reloaded candidate keeps the reference it had
    const previous =
      b !== undefined && b.rollout.id === target.rollout.id ? b.previous : before?.hash === serving.hash ? undefined : before;
    if (b !== undefined) this.end(name, b);
    const r = target.rollout;
    const bake: Bake = {
      rollout: r,
      candidate: serving,
      previous,
      endsAt: r.startedAt.getTime() + r.bakeMs,
      timer: setInterval(() => void this.tick(name, bake), this.o.checkIntervalMs),
      busy: false,
    };
    bake.timer.unref();
    this.bakes.set(name, bake);
    this.o.log.info(
      { plugin: name, rollout: r.id, hash: r.candidateHash },
      `canary of ${name} ${r.candidateVersion} baking on ${this.o.nodeId} until ${new Date(bake.endsAt).toISOString()}`,
    );
    void this.tick(name, bake);
  }

  /** The candidate did not load on this node (the failure as recorded): the rollout is aborted. */
  async loadFailed(name: string, rollout: RolloutRow, failure: { code: string; message: string }): Promise<void> {
    await this.abort(name, rollout, `candidate failed to load on ${this.o.nodeId}: ${failure.code}: ${failure.message}`);
  }

  private async tick(name: string, b: Bake): Promise<void> {
    if (b.busy || this.bakes.get(name) !== b) return;
    b.busy = true;
    try {
      const fault = await this.fault(b);
      if (this.bakes.get(name) !== b) return;
      if (fault !== undefined) {
        this.end(name, b);
        await this.abort(name, b.rollout, fault);
        return;
      }
      if (Date.now() < b.endsAt) return;
      this.end(name, b);
      if (!b.rollout.autoPromote) {
        this.o.log.info(
          { plugin: name, rollout: b.rollout.id },
          `canary of ${name} baked on ${this.o.nodeId}; it stays a canary until promoted`,
        );
        return;
      }
      const r = await this.o.releases.promote(name, `baked ${b.rollout.bakeMs} ms on ${this.o.nodeId} without a fault`, b.rollout.id);
      if (typeof r !== 'string') {
        this.o.decisions.record({
          plugin: name,
          outcome: 'promoted',
          by: `canary ${this.o.nodeId}`,
          candidate: { version: r.candidateVersion, hash: r.candidateHash },
          reason: r.reason ?? undefined,
        });
      }
    } catch (err) {
      // the database is away: the next tick tries again (the bake stays while it is registered)
      this.o.log.warn({ plugin: name, err: describeError(err) }, `canary check of ${name} could not complete; retrying`);
    } finally {
      b.busy = false;
    }
  }

  /** What is wrong with the candidate now, if anything. */
  private async fault(b: Bake): Promise<string | undefined> {
    try {
      const h = await b.candidate.health(this.o.healthTimeoutMs);
      if (!h.ok) return `health check failed on ${this.o.nodeId}${h.detail === undefined ? '' : `: ${h.detail}`}`;
    } catch (err) {
      return `health check failed on ${this.o.nodeId}: ${describeError(err)}`;
    }
    const c = b.candidate;
    if (c.answered < this.o.minRequests) return undefined;
    const ratio = c.serverErrors / c.answered;
    const p = b.previous;
    const reference = p !== undefined && p.answered > 0 ? p.serverErrors / p.answered : 0;
    if ((ratio - reference) * 100 > this.o.max5xxPercent) {
      return `5xx ratio ${(ratio * 100).toFixed(1)}% on ${this.o.nodeId} (previous version ${(reference * 100).toFixed(1)}%, threshold ${this.o.max5xxPercent} points)`;
    }
    return undefined;
  }

  private async abort(name: string, rollout: RolloutRow, reason: string): Promise<void> {
    const r = await this.o.releases.abort(name, reason, rollout.id);
    // 'no-rollout': another node or an admin decided first
    if (typeof r === 'string') return;
    this.o.decisions.record({
      plugin: name,
      outcome: 'aborted',
      by: `canary ${this.o.nodeId}`,
      candidate: { version: r.candidateVersion, hash: r.candidateHash },
      reason,
    });
  }

  private end(name: string, b: Bake): void {
    clearInterval(b.timer);
    if (this.bakes.get(name) === b) this.bakes.delete(name);
  }

  /** Ends every bake (shutdown). */
  stop(): void {
    this.stopped = true;
    for (const [name, b] of this.bakes) this.end(name, b);
  }
}
