import type { PluginChange } from '../events/index.js';
import type { PluginManager } from '../manager/index.js';

/**
 * Why the console should look again:
 * - `desired`: a `plugin_changes` notification (any node, the CLI, plain SQL wrote a `plugins` row);
 * - `observed`: this node's manager changed what it serves or recorded an error;
 * - `cluster`: another node's observed state changed, or a node joined or left.
 */
export type FeedCause = 'desired' | 'observed' | 'cluster';

/** A server-sent event, already framed (`event:` and `data:` lines, blank line). */
export type Frame = string;

/** One open event stream. */
export interface FeedSubscriber {
  send(frame: Frame): void;
  /** The feed is closing (the host shuts down): end the stream so the connection can close. */
  end(): void;
}

export interface ConsoleFeedOptions {
  manager: PluginManager;
  /** Discovery errors noted by the admin (a directory that could not be registered) are observed changes too. */
  admin?: { onChange(listener: (name: string) => void): () => void };
  /** Changes arriving within this window are sent as one event (a full reconcile touches every plugin at once). */
  coalesceMs?: number;
}

/** Frames one event. The data is one line of JSON: `JSON.stringify` never emits a raw newline. */
export function frame(event: string, data: unknown): Frame {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * What the console's event stream carries. Like the notifications the nodes follow, an event
 * is a hint that names plugins, never their state: the page re-reads the read API, so an event
 * can be merged, dropped or repeated without the page showing anything wrong. What makes a
 * dropped event harmless is the resync: every (re)connection starts with `hello`, sent after
 * the subscription is in place, and the page re-reads everything when it gets it.
 */
export class ConsoleFeed {
  private readonly subscribers = new Set<FeedSubscriber>();
  private readonly pendingNames = new Set<string>();
  private readonly pendingCauses = new Set<FeedCause>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly coalesceMs: number;
  private readonly onObserved: (name: string) => void;
  private offDiscovery: () => void = () => {};
  private closed = false;

  constructor(private readonly o: ConsoleFeedOptions) {
    this.coalesceMs = o.coalesceMs ?? 50;
    this.onObserved = (name) => this.note('observed', name);
    o.manager.on('change', this.onObserved);
    if (o.admin !== undefined) this.offDiscovery = o.admin.onChange(this.onObserved);
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Adds a subscriber; returns the function that removes it. */
  subscribe(sub: FeedSubscriber): () => void {
    if (this.closed) {
      sub.end();
      return () => {};
    }
    this.subscribers.add(sub);
    return () => {
      this.subscribers.delete(sub);
    };
  }

  /** A `plugin_changes` notification, as the `ChangeFollower` received it. */
  desired(change: PluginChange): void {
    this.note('desired', change.name);
  }

  /** Another node's observed state changed (which plugins is not known: the page re-reads them all). */
  cluster(): void {
    this.note('cluster');
  }

  /**
   * The node's listener (re)subscribed, or its periodic full reconcile ran: notifications may
   * have been missed while it was disconnected, so every page re-reads everything, as the nodes do.
   */
  resync(): void {
    this.broadcast(frame('resync', { at: new Date().toISOString() }));
  }

  private note(cause: FeedCause, name?: string): void {
    if (this.closed || this.subscribers.size === 0) return;
    if (name !== undefined) this.pendingNames.add(name);
    this.pendingCauses.add(cause);
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => this.flush(), this.coalesceMs);
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    const plugins = [...this.pendingNames].sort();
    const causes = [...this.pendingCauses].sort();
    this.pendingNames.clear();
    this.pendingCauses.clear();
    this.broadcast(frame('change', { plugins, causes }));
  }

  private broadcast(f: Frame): void {
    for (const sub of this.subscribers) sub.send(f);
  }

  /** Stops following the manager and tells every subscriber to end (shutdown). */
  close(): void {
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.o.manager.off('change', this.onObserved);
    this.offDiscovery();
    const all = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of all) sub.end();
  }
}
