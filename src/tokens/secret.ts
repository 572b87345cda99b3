import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Every issued token starts with this, so secret scanners (and people) recognise one in a paste or a commit. */
export const TOKEN_PREFIX = 'ph_';

/** A new secret: the prefix and 32 random bytes (256 bits) in base64url. */
export function newTokenSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** A new token id: public (listed, audited), and unguessable so ids cannot be walked. */
export function newTokenId(): string {
  return `tok_${randomBytes(12).toString('hex')}`;
}

/**
 * What the database keeps of a secret. A plain SHA-256 is enough: the secret
 * has 256 bits of entropy, so there is nothing to brute-force that a slow hash
 * would protect (unlike passwords).
 */
export function hashTokenSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two strings through their SHA-256 (equal lengths whatever was sent). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
