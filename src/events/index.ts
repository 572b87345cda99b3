import type { FastifyBaseLogger } from 'fastify';
import type { Database, Listener } from '../db/index.js';
import { describeError } from '../errors/index.js';

export const CHANNEL = 'plugin_changes';

/** What the trigger sends: it names the row and never carries it. */
export interface PluginChange {
  operation: 'INSERT' | 'UPDATE' | 'DELETE';
  table: string;
  id: string;
  name: string;
  timestamp: string;
}

export function parseChange(payload: string): PluginChange | undefined {
  try {
    const v = JSON.parse(payload) as Partial<PluginChange>;
    if (typeof v.name !== 'string' || typeof v.operation !== 'string') return undefined;
    return v as PluginChange;
  } catch {
    return undefined;
  }
}

export interface ChangeFollowerOptions {
  db: Database;
  log: FastifyBaseLogger;
  /** A notification names one plugin to reconcile. */
  onChange(name: string, change: PluginChange): void;
  /** After every (re)LISTEN: notifications may have been missed, reconcile everything. */
  onResync(): void;
  intervalMs: number;
}

/**
 * Follows `plugin_changes`. Notifications are hints: each one names a plugin
 * whose row is re-read. After every (re)subscribe and on a periodic tick it
 * asks for a full reconcile, so a change sent while disconnected is never lost.
 */
export class ChangeFollower {
  private listener: Listener | undefined;
  private tick: NodeJS.Timeout | undefined;
  private everListened = false;

  constructor(private readonly o: ChangeFollowerOptions) {}

  get connected(): boolean {
    return this.listener?.connected ?? false;
  }

  async start(): Promise<void> {
    this.listener = await this.o.db.listen(CHANNEL, {
      onNotify: (payload) => {
        const change = parseChange(payload);
        if (change === undefined) {
          this.o.log.warn({ payload: payload.slice(0, 200) }, 'ignoring malformed plugin_changes payload');
          return;
        }
        this.o.onChange(change.name, change);
      },
      onListen: () => {
        if (this.everListened) this.o.log.info('listener reconnected; resyncing every plugin');
        this.everListened = true;
        this.o.onResync();
      },
      onDisconnect: (err) => this.o.log.warn({ err: describeError(err) }, 'listener disconnected; reconnecting'),
    });
    this.tick = setInterval(() => this.o.onResync(), this.o.intervalMs);
    this.tick.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.tick);
    await this.listener?.close();
  }
}
