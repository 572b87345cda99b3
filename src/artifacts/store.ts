import type { PluginRepository } from '../db/index.js';
import { HostError } from '../errors/index.js';
import { assertArtifactHash } from '../model/index.js';
import { type Artifact, ArtifactFiles } from './files.js';

export interface PublishedArtifact {
  hash: string;
  pluginName: string;
  version: string;
  format: string;
  bundle: string;
}

/**
 * The artifact store: files in `ARTIFACTS_DIR` plus the same bytes in
 * `plugin_artifacts`, keyed by hash, so any node can load any published
 * version without the source tree. The one owner of where artifacts live and
 * of the checks made before a byte of one is evaluated.
 */
export class ArtifactStore {
  readonly files: ArtifactFiles;

  constructor(
    artifactsDir: string,
    private readonly repo: PluginRepository,
  ) {
    this.files = new ArtifactFiles(artifactsDir);
  }

  /** Makes an artifact loadable by every node (idempotent: the hash is the key). */
  async publish(a: PublishedArtifact): Promise<void> {
    await this.repo.putArtifact(a);
  }

  /**
   * The published artifact `hash` of plugin `name`: the disk cache first, then
   * the database (written through to disk). Throws a coded error when the
   * hash is not a content hash, the artifact is unknown, or it was built by an
   * incompatible host.
   */
  async fetch(name: string, hash: string): Promise<Artifact> {
    assertArtifactHash(hash, name);
    const cached = this.files.read(hash);
    if (cached !== undefined) return cached;
    const stored = await this.repo.getArtifact(hash);
    if (stored === undefined) throw new HostError('PH_ERR_ARTIFACT_MISSING', `${name}: artifact ${hash} is not in the artifact store`);
    this.files.write(stored.hash, stored.bundle);
    const artifact = this.files.read(stored.hash);
    if (artifact === undefined) {
      throw new HostError(
        'PH_ERR_ARTIFACT_INCOMPATIBLE',
        `${name}: artifact ${stored.hash} was built by an incompatible host (${stored.format}) and no source is available to rebuild it`,
      );
    }
    return artifact;
  }
}
