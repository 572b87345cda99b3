import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type {
  ArtifactRecord,
  ArtifactRowUpdate,
  EndpointInput,
  NewPluginRow,
  PluginRepository,
  PluginRow,
  VersionRecord,
} from '../db/index.js';
import { HostError } from '../errors/index.js';
import { assertArtifactHash } from '../model/index.js';
import { type Artifact, ArtifactFiles } from './files.js';
import { ARTIFACT_FORMAT, artifactFormatOf } from './format.js';

export interface PublishedArtifact {
  hash: string;
  pluginName: string;
  version: string;
  format: string;
  bundle: string;
  /** Recorded in the version history with the artifact: what published it, and the version's metadata. */
  history?: { action: string; metadata: object };
}

/** Hex SHA-256 of a bundle's bytes (UTF-8), as stored in `plugin_artifacts.sha256`. */
export function bundleDigest(bundle: string): string {
  return createHash('sha256').update(bundle, 'utf8').digest('hex');
}

/**
 * The artifact store: files in `ARTIFACTS_DIR` plus the same bytes in
 * `plugin_artifacts`, keyed by hash, each with the SHA-256 of its bundle, so
 * any node can load any published version without the source tree. The one
 * owner of where artifacts live and of the check made before a byte of one
 * is evaluated: every bundle read back, from disk or from the database, must
 * match the digest recorded when it was published.
 */
export class ArtifactStore {
  readonly files: ArtifactFiles;
  /** Digests read ahead for a batch of loads (the first full reconcile), each used once, then read again. */
  private readonly readAhead = new Map<string, string | undefined>();

  constructor(
    artifactsDir: string,
    private readonly repo: PluginRepository,
    private readonly log?: FastifyBaseLogger,
    /** Who publishes through this store (a node id, or `cli`), recorded in the version history. */
    private readonly publisher = '',
  ) {
    this.files = new ArtifactFiles(artifactsDir);
  }

  /**
   * Makes an artifact loadable by every node (idempotent: the hash is the key), with its digest, and records
   * it once in the plugin's version history when `history` says who published it and how; with `row`, the
   * plugin row that names it is changed in the same statement.
   */
  async publish(a: PublishedArtifact, row?: ArtifactRowUpdate): Promise<void> {
    const { record, history } = this.recordsOf(a);
    await this.repo.artifacts.put(record, history, row);
  }

  /** The artifact's row (with its digest) and, when `history` says who published it and how, its history entry. */
  private recordsOf(a: PublishedArtifact): { record: ArtifactRecord; history: VersionRecord | undefined } {
    const { history, ...artifact } = a;
    return {
      record: { ...artifact, sha256: bundleDigest(a.bundle) },
      history:
        history === undefined
          ? undefined
          : {
              action: history.action,
              publishedBy: this.publisher,
              metadata: JSON.parse(JSON.stringify(history.metadata)) as Record<string, unknown>,
            },
    };
  }

  /**
   * Publishes an artifact (as `publish`) and registers the plugin row that names it, with its endpoints,
   * unless the name exists or (`unlessRemoved`) an operator removed it: one statement.
   */
  async publishAndRegister(
    a: PublishedArtifact,
    row: Omit<NewPluginRow, 'id'>,
    endpoints: EndpointInput[],
    opts: { unlessRemoved?: boolean } = {},
  ): Promise<{ row: PluginRow | undefined; created: boolean; removed: boolean }> {
    return this.repo.insertIfAbsent(row, endpoints, { ...opts, artifact: this.recordsOf(a) });
  }

  /**
   * The published artifact `hash` of plugin `name`, verified: the disk cache
   * first, then the database (written through to disk). A disk copy that does
   * not match the recorded digest is deleted and replaced by the database's;
   * a database copy that does not match throws `PH_ERR_ARTIFACT_INTEGRITY`
   * (nothing of it is evaluated or cached). Throws a coded error as well when
   * the hash is not a content hash, the artifact is unknown, or it was built
   * by an incompatible host.
   */
  async fetch(name: string, hash: string): Promise<Artifact> {
    assertArtifactHash(hash, name);
    const cached = await this.files.readAsync(hash);
    if (cached !== undefined) {
      const expected = await this.digestOf(hash);
      if (expected === undefined) throw new HostError('PH_ERR_ARTIFACT_MISSING', `${name}: artifact ${hash} is not in the artifact store`);
      if (this.localMatches(name, cached, expected)) return cached;
    }
    // not on disk (a version published by another node): its bytes and digest in one query
    this.readAhead.delete(hash);
    const stored = await this.repo.artifacts.get(hash);
    if (stored === undefined) throw new HostError('PH_ERR_ARTIFACT_MISSING', `${name}: artifact ${hash} is not in the artifact store`);
    const actual = bundleDigest(stored.bundle);
    if (actual !== stored.sha256) throw integrityError(name, stored.version, hash, stored.sha256, actual, 'the database');
    if (artifactFormatOf(stored.bundle) !== ARTIFACT_FORMAT) {
      throw new HostError(
        'PH_ERR_ARTIFACT_INCOMPATIBLE',
        `${name}: artifact ${stored.hash} was built by an incompatible host (${stored.format}) and no source is available to rebuild it`,
      );
    }
    return this.files.writeAsync(stored.hash, stored.bundle);
  }

  /**
   * Whether an artifact file this node finds in its cache may be used (the
   * compiler asks before skipping a build): only when the store holds the
   * same digest for it. A mismatch deletes the file, so it is rebuilt.
   */
  async trustLocal(name: string, artifact: Artifact): Promise<boolean> {
    const expected = await this.digestOf(artifact.hash);
    if (expected === undefined) return false; // never published: nothing to check it against, rebuild
    return this.localMatches(name, artifact, expected);
  }

  /**
   * Reads the recorded digests of `hashes` in one query, for the loads about to start: each load then
   * checks against what the store held when the batch began, as a query of its own would, without a
   * round trip per plugin. Each digest read ahead serves once; later checks query again.
   */
  async readAheadDigests(hashes: Iterable<string>): Promise<void> {
    const wanted = [...new Set(hashes)];
    const found = await this.repo.artifacts.digests(wanted);
    for (const h of wanted) this.readAhead.set(h, found.get(h));
  }

  /** Forgets what `readAheadDigests` read and no load used: from now on every check queries. */
  dropReadAhead(): void {
    this.readAhead.clear();
  }

  private async digestOf(hash: string): Promise<string | undefined> {
    if (this.readAhead.has(hash)) {
      const d = this.readAhead.get(hash);
      this.readAhead.delete(hash);
      return d;
    }
    return this.repo.artifacts.digest(hash);
  }

  private localMatches(name: string, artifact: Artifact, expected: string): boolean {
    const actual = bundleDigest(artifact.bundle);
    if (actual === expected) return true;
    const err = integrityError(name, undefined, artifact.hash, expected, actual, `file ${artifact.path}`);
    this.log?.error({ plugin: name, code: err.code, expected, actual }, `${err.message}; deleting the file`);
    this.files.remove(artifact.hash);
    return false;
  }
}

function integrityError(
  name: string,
  version: string | undefined,
  hash: string,
  expected: string,
  actual: string,
  where: string,
): HostError {
  const v = version === undefined ? '' : ` (version ${version})`;
  return new HostError(
    'PH_ERR_ARTIFACT_INTEGRITY',
    `${name}: artifact ${hash}${v} from ${where} failed its integrity check: sha256 ${actual}, expected ${expected}`,
    { details: { hash, version, expected, actual } },
  );
}
