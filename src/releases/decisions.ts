import type { FastifyBaseLogger } from 'fastify';

export type RolloutOutcome = 'started' | 'promoted' | 'aborted';

export interface RolloutDecision {
  plugin: string;
  outcome: RolloutOutcome;
  /** Who decided: an admin action on a node, or a canary node by itself. */
  by: string;
  candidate?: { version: string; hash: string };
  reason?: string;
  nodes?: string[] | null;
  percent?: number | null;
}

/**
 * Every rollout decision, wherever it is made (an admin request, a canary node's bake): one log line each,
 * and the listeners that count them (the metrics).
 */
export class RolloutDecisions {
  private readonly listeners: Array<(d: RolloutDecision) => void> = [];

  constructor(private readonly log: FastifyBaseLogger) {}

  onDecision(listener: (d: RolloutDecision) => void): void {
    this.listeners.push(listener);
  }

  record(d: RolloutDecision): void {
    const what = d.candidate === undefined ? '' : ` of ${d.candidate.version} (${d.candidate.hash.slice(0, 12)})`;
    const where =
      d.outcome === 'started'
        ? d.nodes != null
          ? ` on ${d.nodes.join(', ')}`
          : d.percent != null
            ? ` on ${d.percent}% of the nodes`
            : ''
        : '';
    const why = d.reason === undefined ? '' : `: ${d.reason}`;
    const line = `rollout of ${d.plugin}${what} ${d.outcome}${where} by ${d.by}${why}`;
    const fields = { plugin: d.plugin, rollout: d.outcome, by: d.by, candidate: d.candidate, reason: d.reason };
    if (d.outcome === 'aborted') this.log.warn(fields, line);
    else this.log.info(fields, line);
    for (const l of this.listeners) l(d);
  }
}
