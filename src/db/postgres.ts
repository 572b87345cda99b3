import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { backoffMs } from '../model/index.js';
import { schema } from './schema.js';
import type { Database, Listener, ListenHandlers, Orm, RawTx } from './types.js';

export interface PostgresOptions {
  url: string;
  password?: string;
  /** `application_name` of the pool (default `plugin-host`: the server; the audit trigger records every other one). */
  applicationName?: string;
  max?: number;
  /** Backoff bounds for the listening connection. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How often the listening connection is pinged to detect a silent loss. */
  listenerPingMs?: number;
  /** A ping not answered within this long counts as a lost connection. */
  listenerPingTimeoutMs?: number;
  onLog?: (msg: string, extra?: Record<string, unknown>) => void;
}

/** `application_name` of the pool's connections and of the listening connection, so an operator can tell them apart. */
export const POOL_APPLICATION_NAME = 'plugin-host';
export const LISTENER_APPLICATION_NAME = 'plugin-host-listener';

function rawTx(sql: postgres.Sql | postgres.TransactionSql): RawTx {
  return {
    async exec(script) {
      // simple protocol: allows several statements and $$-quoted bodies
      await sql.unsafe(script).simple();
    },
    async query<T>(text: string, params: unknown[] = []) {
      return (await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[];
    },
  };
}

/** A PostgreSQL server reached through postgres.js; any number of nodes may share it. */
export function openPostgres(options: PostgresOptions): Database {
  const sql = postgres(options.url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connect_timeout: 5,
    idle_timeout: 30,
    connection: { application_name: options.applicationName ?? POOL_APPLICATION_NAME },
    ...(options.password === undefined ? {} : { password: options.password }),
  });
  const orm = drizzle(sql, { schema }) as unknown as Orm;
  const listeners = new Set<PgListener>();

  return {
    kind: 'postgres',
    orm,
    transaction: (fn) => sql.begin((tx) => fn(rawTx(tx))) as Promise<never>,
    query: (text, params) => rawTx(sql).query(text, params),
    async listen(channel, handlers) {
      const l = new PgListener(options, channel, handlers);
      listeners.add(l);
      await l.start();
      return {
        get connected() {
          return l.connected;
        },
        close: async () => {
          listeners.delete(l);
          await l.close();
        },
      } satisfies Listener;
    },
    async ping() {
      await sql`SELECT 1`;
    },
    async close() {
      await Promise.all([...listeners].map((l) => l.close()));
      await sql.end({ timeout: 2 });
    },
  };
}

/**
 * One dedicated connection per node that LISTENs, notices its own loss (close
 * event or failed ping), reconnects with capped exponential backoff, re-LISTENs
 * and then calls `onListen` so the owner resyncs everything: a notification
 * sent while it was away is gone, the rows are not.
 *
 * Not postgres.js's `sql.listen(channel, onnotify, onlisten)`, which reconnects and re-LISTENs by itself
 * and calls `onlisten` each time: it says nothing when the connection is lost (the host reports itself
 * not following changes meanwhile: `onDisconnect`), and it has no ping, so a connection that died
 * silently (a partition, a backend killed without a close) would go unnoticed until TCP gives up.
 */
class PgListener {
  connected = false;
  private sql: postgres.Sql | undefined;
  private closed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: PostgresOptions,
    private readonly channel: string,
    private readonly handlers: ListenHandlers,
  ) {}

  /** Resolves after the first successful LISTEN, or keeps retrying in the background if the first fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const sql = postgres(this.options.url, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: 5,
      fetch_types: false,
      connection: { application_name: this.handlers.connectionName ?? LISTENER_APPLICATION_NAME },
      ...(this.options.password === undefined ? {} : { password: this.options.password }),
      onnotice: () => {},
      onnotify: (channel: string, payload: string) => {
        if (channel === this.channel) this.handlers.onNotify(payload);
      },
      onclose: () => this.lost(sql, new Error('listener connection closed')),
    } as postgres.Options<Record<string, never>>);
    this.sql = sql;
    try {
      await sql.unsafe(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    } catch (err) {
      this.lost(sql, err);
      return;
    }
    if (this.closed || this.sql !== sql) return;
    this.connected = true;
    this.attempt = 0;
    const pingMs = this.options.listenerPingMs ?? 2000;
    const pingTimeoutMs = this.options.listenerPingTimeoutMs ?? Math.max(5000, pingMs * 2);
    let pinging = false;
    this.pingTimer = setInterval(() => {
      // One ping at a time; one that hangs (a half-open TCP connection, a stuck server) counts as a loss.
      if (pinging) return;
      pinging = true;
      const timeout = setTimeout(() => this.lost(sql, new Error(`listener ping not answered within ${pingTimeoutMs} ms`)), pingTimeoutMs);
      timeout.unref();
      sql`SELECT 1`
        .then(
          () => {},
          (err: unknown) => this.lost(sql, err),
        )
        .finally(() => {
          clearTimeout(timeout);
          pinging = false;
        });
    }, pingMs);
    this.pingTimer.unref();
    this.handlers.onListen();
  }

  private lost(sql: postgres.Sql, err: unknown): void {
    if (this.sql !== sql) return; // an older connection's late event
    this.sql = undefined;
    const wasConnected = this.connected;
    this.connected = false;
    clearInterval(this.pingTimer);
    sql.end({ timeout: 0 }).catch(() => {});
    if (this.closed) return;
    if (wasConnected || this.attempt === 0) this.handlers.onDisconnect(err);
    const min = this.options.reconnectMinMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5000;
    const delay = backoffMs(this.attempt, { firstMs: min, maxMs: max, jitter: true });
    this.attempt++;
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const sql = this.sql;
    this.sql = undefined;
    this.connected = false;
    if (sql) await sql.end({ timeout: 1 }).catch(() => {});
  }
}
