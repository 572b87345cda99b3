import { HostError } from '../errors/index.js';

/** The settings of scoped tokens and the audit trail (part of the host's configuration). */
export interface TokenSettings {
  /** How long a node trusts what it read of a token (revocations also arrive by notification). */
  tokenCacheMs: number;
  /** Audit entries older than this many days are deleted. */
  auditRetentionDays: number;
}

function integer(setting: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) {
    throw new HostError('PH_ERR_CONFIG_INVALID', `${setting}: expected an integer ${min}..${max}, got "${raw}"`, { details: { setting } });
  }
  return n;
}

/**
 * Reads `TOKEN_CACHE_MS` (default 2000, at most 60000) and
 * `AUDIT_RETENTION_DAYS` (default 90). A revocation reaches the nodes by
 * notification, and a node whose listener is down reads every token from the
 * database: the cache's age bounds only a notification lost on a connection
 * that still looks up, so the default keeps even that case under 5 s.
 */
export function tokenSettings(pick: (key: keyof TokenSettings, envName: string) => string | undefined): TokenSettings {
  return {
    tokenCacheMs: integer('TOKEN_CACHE_MS', pick('tokenCacheMs', 'TOKEN_CACHE_MS') ?? '2000', 0, 60_000),
    auditRetentionDays: integer('AUDIT_RETENTION_DAYS', pick('auditRetentionDays', 'AUDIT_RETENTION_DAYS') ?? '90', 1, 36_500),
  };
}
