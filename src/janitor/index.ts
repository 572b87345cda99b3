import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactFiles } from '../artifacts/index.js';
import type { PluginRepository, ReleaseRepository } from '../db/index.js';
import { describeError } from '../errors/index.js';

export interface JanitorOptions {
  repo: PluginRepository;
  /** The version history, trimmed to `versionsKept` per plugin before artifacts are collected. */
  versions?: Pick<ReleaseRepository, 'trimVersions'>;
  versionsKept?: number;
  files: ArtifactFiles;
  log: FastifyBaseLogger;
  /** Unreferenced artifacts (rows and files) older than this are collected. */
  artifactRetentionMs: number;
  /** Rows of nodes whose heartbeat is older than this are collected. */
  nodeRetentionMs: number;
  /** A node whose heartbeat is newer than this is live: what it serves is kept. */
  liveWithinMs: number;
  intervalMs: number;
}

/**
 * Collects what nothing refers to any more, so the database and the disk do
 * not grow with every published version or every node that ever ran: rows
 * of nodes long gone (their observed state goes with them), versions past
 * the history's retention (`VERSIONS_KEPT`, unless published, pinned, in a
 * rollout or serving), artifacts no plugin row, kept version or rollout
 * names and no live node serves, and artifact files (or crash
 * leftovers) in this node's `ARTIFACTS_DIR`. Every node runs it; each
 * deletion is idempotent, so nodes running it together agree.
 */
export class Janitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: JanitorOptions) {}

  start(): this {
    this.timer = setInterval(() => void this.runOnce(), this.o.intervalMs);
    this.timer.unref();
    return this;
  }

  /** One collection (never throws: a failure is logged and the next round tries again). */
  runOnce(): Promise<void> {
    this.running ??= this.collect().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async collect(): Promise<void> {
    const now = Date.now();
    try {
      const nodes = await this.o.repo.nodes.collectDead(new Date(now - this.o.nodeRetentionMs));
      const liveSince = new Date(now - this.o.liveWithinMs);
      const versions = this.o.versions === undefined ? [] : await this.o.versions.trimVersions(this.o.versionsKept ?? 20, liveSince);
      const rows = await this.o.repo.artifacts.collect(new Date(now - this.o.artifactRetentionMs), liveSince);
      const keep = await this.o.repo.artifacts.referenced(liveSince);
      const files = this.o.files.sweep(keep, new Date(now - this.o.artifactRetentionMs));
      if (nodes.length + versions.length + rows.length + files.length > 0) {
        this.o.log.info(
          { nodes, versions, artifacts: rows, files },
          `collected ${nodes.length} dead node(s), ${versions.length} version(s) past retention, ${rows.length} unreferenced artifact(s), ${files.length} artifact file(s)`,
        );
      }
    } catch (err) {
      this.o.log.warn({ err: describeError(err) }, 'collection of unreferenced artifacts and dead nodes failed; retrying later');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
