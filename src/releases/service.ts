import type { FastifyBaseLogger } from 'fastify';
import type { PluginRepository, PluginRow, Refusal, ReleaseRepository, RolloutRow, VersionRow } from '../db/index.js';
import { HostError, pluginNotFound } from '../errors/index.js';
import type { VersionEntry } from '../model/answers.js';
import { assertPluginName } from '../model/index.js';
import type { RolloutDecisions } from './decisions.js';
import { chosenByPercent } from './selection.js';

/**
 * Compiles a plugin's current source as a rollout's candidate and publishes it (`PluginAdmin` does). Declared
 * here, as releases need only this of the admin path, which sits above them.
 */
export interface CandidateCompiler {
  compileCandidate(name: string): Promise<{ artifact: { hash: string }; metadata: { version: string } }>;
}

export interface ReleasesOptions {
  repo: PluginRepository;
  releases: ReleaseRepository;
  admin: CandidateCompiler;
  decisions: RolloutDecisions;
  log: FastifyBaseLogger;
  /** Bake period of a rollout that does not give its own. */
  bakeMs: number;
  /** A node whose heartbeat is older than this is not live (a rollout must reach at least one live node). */
  liveWithinMs: number;
}

/** A stored version named by its semver `version` or its artifact `hash`. */
export interface VersionRef {
  version?: string;
  hash?: string;
}

export interface RolloutRequest extends VersionRef {
  nodes?: string[];
  percent?: number;
  autoPromote?: boolean;
  bakeMs?: number;
}

/** One entry of a plugin's version history, as the API answers it. */
export type VersionView = VersionEntry;

/**
 * Versions, rollbacks and staged rollouts as the admin API and the CLI ask for them. Every change is one
 * transaction on the database (see `ReleaseRepository`); the nodes follow through the notification, the
 * canary nodes judge the candidate themselves (`CanaryWatch`). Bad input is refused with a coded problem
 * before anything is written.
 */
export class Releases {
  constructor(private readonly o: ReleasesOptions) {}

  /** The plugin's recorded versions, newest first, each with the live nodes serving it. */
  async versions(name: string, liveWithinMs: number): Promise<VersionView[]> {
    await this.existing(name);
    const rows = await this.o.releases.versions(name);
    const serving = await this.o.releases.servingNodes(name, new Date(Date.now() - liveWithinMs));
    return rows.map((v) => versionView(v, serving.get(v.hash) ?? []));
  }

  /** Pins the plugin to a stored version: every node serves it until a reload (or a promotion) unpins it. */
  async rollback(name: string, ref: VersionRef, by: string): Promise<PluginRow> {
    const row = await this.existing(name);
    if (row.type !== 'dynamic') throw new HostError('PH_ERR_ROLLOUT_INVALID', `${name}: a static plugin has no stored versions`);
    const v = await this.find(name, ref);
    const r = await this.o.releases.pin(name, v.hash, v.version, row.updatedAt);
    if (typeof r === 'string') throw refusal(name, r);
    this.o.log.info(
      { plugin: name, version: v.version, hash: v.hash, by },
      `plugin ${name} pinned to ${v.version} (${short(v.hash)}) by ${by}`,
    );
    return r;
  }

  /**
   * Starts a staged rollout: the candidate (a stored version, or the current source compiled and proven
   * here) goes to the chosen nodes only. Refused with nothing written when the candidate does not compile or
   * prove, is what already serves, or another rollout of the plugin is in its canary stage.
   */
  async startRollout(name: string, req: RolloutRequest, by: string): Promise<RolloutRow> {
    const row = await this.existing(name);
    if (row.type !== 'dynamic') throw new HostError('PH_ERR_ROLLOUT_INVALID', `${name}: a static plugin cannot be rolled out`);
    const nodes = req.nodes === undefined ? null : [...new Set(req.nodes)];
    const percent = req.percent ?? null;
    if ((nodes === null) === (percent === null)) throw new HostError('PH_ERR_BAD_REQUEST', 'give either "nodes" or "percent"');
    if (nodes !== null && nodes.length === 0) throw new HostError('PH_ERR_ROLLOUT_INVALID', `${name}: "nodes" is empty`);
    // a rollout no live node would take part in is a mistake (a typo in a node id, a percentage too small)
    const live = await this.o.releases.liveNodes(new Date(Date.now() - this.o.liveWithinMs));
    if (nodes !== null) {
      const unknown = nodes.filter((n) => !live.includes(n));
      if (unknown.length > 0)
        throw new HostError('PH_ERR_ROLLOUT_INVALID', `${name}: not live nodes: ${unknown.join(', ')} (live: ${live.join(', ')})`);
    } else if (!live.some((n) => chosenByPercent(n, name, percent as number))) {
      throw new HostError('PH_ERR_ROLLOUT_INVALID', `${name}: ${percent}% picks none of the live nodes (${live.join(', ')})`);
    }
    // checked here too, before a compile: the transaction below decides a race
    const current = await this.o.releases.rollout(name);
    if (current?.state === 'canary') throw refusal(name, 'rollout-in-progress');
    let candidate: { hash: string; version: string };
    const fromSource = req.version === undefined && req.hash === undefined;
    if (fromSource) {
      const proven = await this.o.admin.compileCandidate(name);
      candidate = { hash: proven.artifact.hash, version: proven.metadata.version };
    } else {
      candidate = await this.find(name, req);
    }
    const serving = row.pinnedHash ?? row.artifactHash;
    if (candidate.hash === serving) {
      throw new HostError(
        'PH_ERR_ROLLOUT_INVALID',
        `${name}: the candidate ${candidate.version} (${short(candidate.hash)}) is the version already served`,
      );
    }
    const r = await this.o.releases.startRollout({
      name,
      candidateHash: candidate.hash,
      candidateVersion: candidate.version,
      fromSource,
      nodes,
      percent,
      autoPromote: req.autoPromote ?? false,
      bakeMs: req.bakeMs ?? this.o.bakeMs,
      startedBy: by,
    });
    if (typeof r === 'string') throw refusal(name, r);
    this.o.decisions.record({ plugin: name, outcome: 'started', by, candidate, nodes, percent });
    return r;
  }

  async promote(name: string, by: string): Promise<RolloutRow> {
    assertPluginName(name);
    const r = await this.o.releases.promote(name, `promoted by ${by}`);
    if (typeof r === 'string') throw refusal(name, r);
    this.o.decisions.record({ plugin: name, outcome: 'promoted', by, candidate: { version: r.candidateVersion, hash: r.candidateHash } });
    return r;
  }

  async abort(name: string, by: string): Promise<RolloutRow> {
    assertPluginName(name);
    const reason = `aborted by ${by}`;
    const r = await this.o.releases.abort(name, reason);
    if (typeof r === 'string') throw refusal(name, r);
    this.o.decisions.record({
      plugin: name,
      outcome: 'aborted',
      by,
      candidate: { version: r.candidateVersion, hash: r.candidateHash },
      reason,
    });
    return r;
  }

  private async existing(name: string): Promise<PluginRow> {
    assertPluginName(name);
    const row = await this.o.repo.getByName(name);
    if (row === undefined) throw refusal(name, 'not-found');
    return row;
  }

  private async find(name: string, ref: VersionRef): Promise<VersionRow> {
    if ((ref.version === undefined) === (ref.hash === undefined))
      throw new HostError('PH_ERR_BAD_REQUEST', 'give either "version" or "hash"');
    const v = await this.o.releases.findVersion(name, ref);
    if (v === undefined) {
      const what = ref.hash !== undefined ? `hash ${ref.hash}` : `version ${ref.version}`;
      throw new HostError('PH_ERR_VERSION_NOT_FOUND', `${name}: ${what} is not in its version history (GET /plugins/${name}/versions)`);
    }
    return v;
  }
}

function versionView(v: VersionRow, nodes: string[]): VersionView {
  return {
    version: v.version,
    hash: v.hash,
    sha256: v.sha256,
    created_at: v.createdAt.toISOString(),
    published_by: v.publishedBy,
    action: v.action,
    metadata: v.metadata,
    nodes,
  };
}

function refusal(name: string, r: Refusal): HostError {
  switch (r) {
    case 'not-found':
      return pluginNotFound(name);
    case 'rollout-in-progress':
      return new HostError('PH_ERR_ROLLOUT_CONFLICT', `${name}: a rollout is in its canary stage; promote or abort it first`);
    case 'no-rollout':
      return new HostError('PH_ERR_ROLLOUT_NOT_FOUND', `${name}: no rollout is in its canary stage`);
    case 'changed-meanwhile':
      return new HostError(
        'PH_ERR_ROLLOUT_CONFLICT',
        `${name}: changed by someone else meanwhile (another rollback?); look again and retry`,
      );
    case 'nothing-serves':
      return new HostError('PH_ERR_ROLLOUT_INVALID', `${name}: no version is published yet to keep serving beside a canary`);
  }
}

function short(hash: string): string {
  return hash.slice(0, 12);
}
