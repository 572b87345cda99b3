import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { Schema } from './schema.js';

/** Drizzle handle over either driver; the repository is written once against it. */
export type Orm = PgDatabase<PgQueryResultHKT, Schema>;

/** Raw SQL inside a transaction: `exec` runs a multi-statement script, `query` one parameterised statement. */
export interface RawTx {
  exec(script: string): Promise<void>;
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

/** A subscription on a dedicated connection. `onListen` fires after every (re)subscribe: the hook to resync. */
export interface ListenHandlers {
  onNotify(payload: string): void;
  onListen(): void;
  onDisconnect(err: unknown): void;
  /** `application_name` of the listening connection on PostgreSQL (default `plugin-host-listener`), so each subscription is told apart. */
  connectionName?: string;
}

export interface Listener {
  readonly connected: boolean;
  close(): Promise<void>;
}

export interface Database {
  readonly kind: 'pglite' | 'postgres';
  readonly orm: Orm;
  transaction<T>(fn: (tx: RawTx) => Promise<T>): Promise<T>;
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  listen(channel: string, handlers: ListenHandlers): Promise<Listener>;
  /** Cheap round trip used by readiness and outage detection. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
