import type { Database } from '../db/index.js';
import { HostError } from '../errors/index.js';
import type { Scope } from './scopes.js';
import { hashTokenSecret, newTokenId, newTokenSecret } from './secret.js';

/** A token as listed: everything but its secret, which the database does not have. */
export interface TokenInfo {
  id: string;
  name: string;
  scopes: Scope[];
  created_by: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** Timestamps as ISO 8601 text, read the same way from both drivers. */
const COLUMNS = `id, name, scopes::text AS scopes, created_by, to_json(created_at) #>> '{}' AS created_at,
  to_json(expires_at) #>> '{}' AS expires_at, to_json(last_used_at) #>> '{}' AS last_used_at,
  to_json(revoked_at) #>> '{}' AS revoked_at`;

type RawRow = Omit<TokenInfo, 'scopes'> & { scopes: string };

function info(r: RawRow): TokenInfo {
  return { ...r, scopes: JSON.parse(r.scopes) as Scope[] };
}

/** Longest token name accepted: a label for people and the audit trail. */
export const MAX_TOKEN_NAME = 100;
const NAME_PATTERN = /^[\w.@:/-][\w .@:/-]*$/;

/** The `api_tokens` table: create (the only time the secret exists), list, find by secret, revoke, mark used. */
export class TokenStore {
  constructor(private readonly db: Database) {}

  /** Creates a token; the answer is the only place its secret ever appears. */
  async create(o: {
    name: string;
    scopes: Scope[];
    createdBy: string;
    expiresAt?: Date | undefined;
  }): Promise<{ id: string; token: string; info: TokenInfo }> {
    if (o.name.length === 0 || o.name.length > MAX_TOKEN_NAME || !NAME_PATTERN.test(o.name)) {
      throw new HostError('PH_ERR_BAD_REQUEST', `a token name is 1 to ${MAX_TOKEN_NAME} letters, digits, spaces or . _ @ : / -`);
    }
    if (o.expiresAt !== undefined && !(o.expiresAt.getTime() > Date.now())) {
      throw new HostError('PH_ERR_BAD_REQUEST', 'expiresAt must be a date in the future');
    }
    const token = newTokenSecret();
    const id = newTokenId();
    const rows = await this.db.query<RawRow>(
      `INSERT INTO api_tokens (id, name, hash, scopes, created_by, expires_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING ${COLUMNS}`,
      [id, o.name, hashTokenSecret(token), JSON.stringify(o.scopes), o.createdBy, o.expiresAt?.toISOString() ?? null],
    );
    return { id, token, info: info(rows[0] as RawRow) };
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.db.query<RawRow>(`SELECT ${COLUMNS} FROM api_tokens ORDER BY api_tokens.created_at, api_tokens.id`)).map(info);
  }

  /** The token whose secret hashes to `hash`, revoked and expired ones included (the caller says why it refuses). */
  async findByHash(hash: string): Promise<TokenInfo | undefined> {
    const rows = await this.db.query<RawRow>(`SELECT ${COLUMNS} FROM api_tokens WHERE hash = $1`, [hash]);
    return rows[0] === undefined ? undefined : info(rows[0]);
  }

  /** Revokes a token (kept, so the audit trail still names it); the trigger tells every node. */
  async revoke(id: string): Promise<TokenInfo> {
    const rows = await this.db.query<RawRow>(
      `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
      [id],
    );
    if (rows[0] === undefined) throw new HostError('PH_ERR_TOKEN_NOT_FOUND', `no token with id "${id.slice(0, 80)}"`);
    return info(rows[0]);
  }

  /**
   * Records a use. Callers throttle it (one write per token per minute): last
   * use is for spotting unused tokens, not an access log (the audit trail is).
   * The change trigger ignores this column: no node hears of a use.
   */
  async touch(id: string): Promise<void> {
    await this.db.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
  }
}
