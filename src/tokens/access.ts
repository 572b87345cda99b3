import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { Database, Listener } from '../db/index.js';
import { describeError, HostError } from '../errors/index.js';
import { AuditLog } from './audit.js';
import { needOf } from './route-scopes.js';
import { allows, describeNeed, type Need } from './scopes.js';
import { hashTokenSecret, sameSecret, TOKEN_PREFIX } from './secret.js';
import { type TokenInfo, TokenStore } from './store.js';

/** Who a call is made by: never the secret, only what the audit trail and the scope check need. */
export interface Principal {
  /** The token's name, or `ADMIN_TOKEN` for the bootstrap secret. */
  name: string;
  /** The token's id; null for `ADMIN_TOKEN`. */
  id: string | null;
  scopes: readonly string[];
}

/** The bootstrap secret's principal: it holds `admin`. */
export const BOOTSTRAP: Principal = Object.freeze({ name: 'ADMIN_TOKEN', id: null, scopes: Object.freeze(['admin']) });

/** The notification channel the `api_tokens` trigger sends a changed token's id on. */
export const TOKEN_CHANNEL = 'token_changes';

export interface AccessControlOptions {
  db: Database;
  /** `ADMIN_TOKEN`; undefined disables the control plane's guarded routes (403 with a how-to). */
  adminToken: string | undefined;
  nodeId: string;
  /** How long a read token row is trusted while the notification listener is up (`TOKEN_CACHE_MS`). */
  cacheMs: number;
  /** Audit entries older than this are deleted (`AUDIT_RETENTION_DAYS`). */
  auditRetentionMs: number;
  log: FastifyBaseLogger;
}

/** Bounds memory: a flood of made-up tokens cannot grow the cache past this. */
const CACHE_LIMIT = 1000;
/** Last use is written at most this often per token and node. */
const TOUCH_EVERY_MS = 60_000;
const PRUNE_EVERY_MS = 3_600_000;

interface Cached {
  token: TokenInfo | undefined;
  readAt: number;
}

/**
 * Who may call the control plane. `authorize` turns a request's bearer token
 * into a principal and checks it against the route's scope (`ROUTE_SCOPES`),
 * or throws a coded error. Token rows are cached for `cacheMs` at most, and
 * only while the `token_changes` listener is connected: a notification drops
 * the changed token at once, a (re)subscribe drops every entry (what was missed
 * meanwhile is unknown), and while disconnected every call reads the database.
 */
export class AccessControl {
  readonly tokens: TokenStore;
  readonly audit: AuditLog;
  /** Every route guarded by this instance (`METHOD /url`), to check the scope table against. */
  readonly guarded = new Set<string>();
  private readonly cache = new Map<string, Cached>();
  private readonly touched = new Map<string, number>();
  private readonly adminToken: string | undefined;
  private listener: Listener | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: AccessControlOptions) {
    this.tokens = new TokenStore(o.db);
    this.audit = new AuditLog(o.db);
    this.adminToken = o.adminToken;
  }

  /** Builds and starts the access control of a host from its configuration. */
  static open(
    db: Database,
    c: { adminToken: string | undefined; nodeId: string; tokenCacheMs: number; auditRetentionDays: number },
    log: FastifyBaseLogger,
  ): Promise<AccessControl> {
    const o = { db, adminToken: c.adminToken, nodeId: c.nodeId, cacheMs: c.tokenCacheMs, log };
    return new AccessControl({ ...o, auditRetentionMs: c.auditRetentionDays * 86_400_000 }).start();
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  /** Subscribes to token changes and starts the audit retention; call before serving. */
  async start(): Promise<this> {
    if (this.o.db.kind === 'pglite') {
      // The embedded database has one session, the host's: the audit trigger must know its writes are the host's
      // (on PostgreSQL the pool's application_name says so already).
      await this.o.db.query("SET application_name TO 'plugin-host'");
    }
    this.listener = await this.o.db.listen(TOKEN_CHANNEL, {
      // a connection of its own, named apart from the plugin changes' listener
      connectionName: 'plugin-host-listener-tokens',
      onNotify: (id) => this.forget(id),
      onListen: () => this.cache.clear(),
      onDisconnect: (err) => {
        this.cache.clear();
        this.o.log.warn({ err: describeError(err) }, 'token listener disconnected; reading tokens from the database until it is back');
      },
    });
    const prune = () => {
      this.audit.prune(this.o.auditRetentionMs).then(
        (n) => {
          if (n > 0) this.o.log.info({ deleted: n }, `deleted ${n} audit entries past AUDIT_RETENTION_DAYS`);
        },
        (err: unknown) => this.o.log.warn({ err: describeError(err) }, 'audit retention failed; retrying later'),
      );
    };
    prune();
    this.pruneTimer = setInterval(prune, PRUNE_EVERY_MS);
    this.pruneTimer.unref();
    return this;
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    await this.listener?.close().catch(() => {});
    this.cache.clear();
  }

  /**
   * The principal of a request allowed to call its route, or a thrown coded
   * error: `PH_ERR_ADMIN_DISABLED` (no `ADMIN_TOKEN`), `PH_ERR_UNAUTHORIZED`
   * (no bearer token, or an unknown one without the `ph_` prefix),
   * `PH_ERR_TOKEN_INVALID` / `_EXPIRED` / `_REVOKED`, `PH_ERR_FORBIDDEN_SCOPE`
   * (naming the scope the call needed). A route missing from the scope table
   * needs `admin`.
   */
  async authorize(req: FastifyRequest): Promise<Principal> {
    const principal = await this.authenticate(req.headers.authorization);
    this.permit(req, principal);
    return principal;
  }

  /** Throws `PH_ERR_FORBIDDEN_SCOPE` unless `principal` holds what the request's route needs. */
  permit(req: FastifyRequest, principal: Principal): void {
    const need: Need = needOf(req.method, req.routeOptions.url ?? '', req.params) ?? { kind: 'admin' };
    if (!allows(principal.scopes, need)) {
      const scope = describeNeed(need);
      throw new HostError('PH_ERR_FORBIDDEN_SCOPE', `token "${principal.name}" does not hold the scope ${scope} this call needs`, {
        details: { needed_scope: scope },
      });
    }
  }

  /**
   * The principal a bearer header names (no scope check). `identified` hears of
   * a known token even when it is then refused (revoked, expired), so the audit
   * entry of the refusal names it.
   */
  async authenticate(header: string | undefined, identified?: (p: Principal) => void): Promise<Principal> {
    if (this.adminToken === undefined) {
      throw new HostError(
        'PH_ERR_ADMIN_DISABLED',
        'the admin API is disabled: start the server with ADMIN_TOKEN set (at least 8 characters) and send it as "Authorization: Bearer <token>"',
      );
    }
    const m = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    if (m === null) throw new HostError('PH_ERR_UNAUTHORIZED', 'admin routes need the header "Authorization: Bearer <token>"');
    const secret = m[1] as string;
    if (sameSecret(secret, this.adminToken)) return BOOTSTRAP;
    if (!secret.startsWith(TOKEN_PREFIX)) throw new HostError('PH_ERR_UNAUTHORIZED', 'the admin token is not valid');
    const token = await this.lookup(hashTokenSecret(secret));
    if (token === undefined) throw new HostError('PH_ERR_TOKEN_INVALID', 'the token is not valid');
    const principal: Principal = { name: token.name, id: token.id, scopes: token.scopes };
    identified?.(principal);
    if (token.revoked_at !== null) throw new HostError('PH_ERR_TOKEN_REVOKED', `token "${token.name}" (${token.id}) was revoked`);
    if (token.expires_at !== null && Date.parse(token.expires_at) <= Date.now()) {
      throw new HostError('PH_ERR_TOKEN_EXPIRED', `token "${token.name}" (${token.id}) expired at ${token.expires_at}`);
    }
    this.noteUse(token.id);
    return principal;
  }

  /** Drops a token from the cache (its row changed). */
  forget(id: string): void {
    for (const [hash, c] of this.cache) if (c.token?.id === id) this.cache.delete(hash);
  }

  private async lookup(hash: string): Promise<TokenInfo | undefined> {
    const now = Date.now();
    const useCache = this.listener?.connected === true && this.o.cacheMs > 0;
    const hit = useCache ? this.cache.get(hash) : undefined;
    if (hit !== undefined && now - hit.readAt < this.o.cacheMs) return hit.token;
    const token = await this.tokens.findByHash(hash);
    // a revocation notified while this read was in flight is cached for cacheMs at most: still within the bound
    if (useCache) {
      this.cache.delete(hash);
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(hash, { token, readAt: now });
    }
    return token;
  }

  private noteUse(id: string): void {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    if (this.touched.size > CACHE_LIMIT) this.touched.delete(this.touched.keys().next().value as string);
    this.tokens.touch(id).catch((err: unknown) => this.o.log.warn({ err: describeError(err) }, 'could not record a token use'));
  }
}
