import type { Database } from '../db/index.js';
import { HostError } from '../errors/index.js';

/** One entry of the trail. Never a secret: a token is named by its name and id. */
export interface AuditEntry {
  /** Token name, `ADMIN_TOKEN`, `anonymous` for a call without a valid token, or the database user. */
  actor: string;
  token_id: string | null;
  node_id: string | null;
  /** `api` (the control plane) or `sql` (a change of a plugin row made by another database session). */
  via: 'api' | 'sql';
  /** `METHOD /route/:pattern`, or `UPDATE plugins` for a change by SQL. */
  action: string;
  plugin: string | null;
  /** What else the call acted on: the token a `/tokens` call created or revoked. */
  target: string | null;
  /** `ok`, `refused` (401/403: nothing was tried) or `failed` (the call was allowed and answered an error). */
  outcome: 'ok' | 'refused' | 'failed';
  status: number | null;
  code: string | null;
  request_id: string | null;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  at: string;
}

export interface AuditQuery {
  plugin?: string | undefined;
  /** A token id or a token name. */
  token?: string | undefined;
  since?: Date | undefined;
  /** Entries older (lower id) than this id: the next page. */
  before?: string | undefined;
  limit: number;
}

/** Bound on unawaited writes (see `recordLater`). */
const MAX_PENDING = 200;

/** Control characters (a NUL among them) replaced by `?`. */
function printable(v: string): string {
  let out = '';
  for (const ch of v) out += ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? '?' : ch;
  return out;
}

const COLUMNS = `id::text AS id, to_json(at) #>> '{}' AS at, actor, token_id, node_id, via, action, plugin, target, outcome, status, code, request_id`;

/** The `audit_log` table: append, page through newest first, forget what retention allows. */
export class AuditLog {
  private pending = 0;
  /** Entries of refused or failed calls not recorded because too many were being written already. */
  dropped = 0;

  constructor(private readonly db: Database) {}

  async record(e: AuditEntry): Promise<void> {
    // what a hostile caller put in a URL may hold a NUL (refused by PostgreSQL in text) or control characters
    const t = (v: string | null) => (v === null ? null : printable(v).slice(0, 300));
    e = {
      ...e,
      actor: t(e.actor) ?? '',
      action: t(e.action) ?? '',
      plugin: t(e.plugin),
      target: t(e.target),
      code: t(e.code),
      request_id: t(e.request_id),
    };
    await this.db.query(
      `INSERT INTO audit_log (actor, token_id, node_id, via, action, plugin, target, outcome, status, code, request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [e.actor, e.token_id, e.node_id, e.via, e.action, e.plugin, e.target, e.outcome, e.status, e.code, e.request_id],
    );
  }

  /**
   * Records without making the caller wait: for refusals and failures, whose
   * answer must not wait on the database (a client that half-closes its socket
   * would lose it). At most `MAX_PENDING` such writes are in flight; past that
   * (a flood of refused calls) entries are dropped and counted in `dropped`.
   */
  recordLater(e: AuditEntry, onError: (err: unknown) => void): void {
    if (this.pending >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.pending++;
    this.record(e)
      .catch(onError)
      .finally(() => this.pending--);
  }

  /** Newest first; `before` is the last id of the previous page. */
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(clause(`$${params.length}`));
    };
    if (q.plugin !== undefined) add((n) => `plugin = ${n}`, q.plugin);
    if (q.token !== undefined) add((n) => `(token_id = ${n} OR actor = ${n})`, q.token);
    if (q.since !== undefined) add((n) => `at >= ${n}`, q.since.toISOString());
    if (q.before !== undefined) {
      if (!/^[0-9]{1,18}$/.test(q.before)) throw new HostError('PH_ERR_BAD_REQUEST', 'before must be an audit entry id');
      add((n) => `id < ${n}::bigint`, q.before);
    }
    params.push(q.limit);
    const rows = await this.db.query<AuditRecord & { status: number | null }>(
      `SELECT ${COLUMNS} FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY audit_log.id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({ ...r, status: r.status === null ? null : Number(r.status) }));
  }

  /** Deletes entries older than `retentionMs`; returns how many. */
  async prune(retentionMs: number): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      `WITH gone AS (DELETE FROM audit_log WHERE at < now() - ($1::bigint * interval '1 millisecond') RETURNING 1) SELECT count(*)::int AS n FROM gone`,
      [retentionMs],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
