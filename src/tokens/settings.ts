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
 * Reads `TOKEN_CACHE_MS` (default 2000, at most 4000: with the notification
 * lost, a revoked token is still refused everywhere within 5 s) and
 * `AUDIT_RETENTION_DAYS` (default 90).
 */
export function tokenSettings(pick: (key: keyof TokenSettings, envName: string) => string | undefined): TokenSettings {
  return {
    tokenCacheMs: integer('TOKEN_CACHE_MS', pick('tokenCacheMs', 'TOKEN_CACHE_MS') ?? '2000', 0, 4000),
    auditRetentionDays: integer('AUDIT_RETENTION_DAYS', pick('auditRetentionDays', 'AUDIT_RETENTION_DAYS') ?? '90', 1, 36_500),
  };
}
