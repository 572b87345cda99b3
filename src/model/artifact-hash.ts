import { HostError } from '../errors/index.js';

/**
 * What `artifact_hash` may hold: a content hash, never a path. A hash read
 * from the database becomes a file name in `ARTIFACTS_DIR`, so a hand-written
 * value must never be able to leave that directory.
 */
export const ARTIFACT_HASH_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export function isArtifactHash(hash: unknown): hash is string {
  return typeof hash === 'string' && ARTIFACT_HASH_PATTERN.test(hash);
}

/** Throws `PH_ERR_DESIRED_STATE_INVALID` unless `hash` is a content hash; `subject` prefixes the message. */
export function assertArtifactHash(hash: unknown, subject?: string): asserts hash is string {
  if (!isArtifactHash(hash)) {
    const what = subject === undefined ? 'artifact hash' : `${subject}: artifact_hash`;
    throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${what} ${JSON.stringify(hash)} is not a content hash`);
  }
}
