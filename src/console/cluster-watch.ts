import type { FastifyBaseLogger } from 'fastify';
import type { Database } from '../db/index.js';
import { describeError } from '../errors/index.js';
import type { ConsoleFeed } from './feed.js';

export interface ClusterWatchOptions {
  db: Database;
  feed: ConsoleFeed;
  /** This node: its own changes reach the feed from its manager, without a query. */
  nodeId: string;
  /** Nodes whose heartbeat is older than this are gone (the read API's rule). */
  liveWithinMs: number;
  intervalMs?: number;
  log: FastifyBaseLogger;
}

interface NodeMark {
  node_id: string;
  states: number;
  updated: string | null;
}

/**
 * Notices changes in other nodes' observed state. `plugin_node_state` has no trigger on
 * purpose (a node recording what it serves must not wake its peers), so the console's feed
 * cannot be told: while at least one page follows the feed, this asks the database once per
 * interval for one aggregate line per live node (rows and latest update) and signals the feed
 * when that changes: a node applied something, failed, joined or left.
 */
export class ClusterWatch {
  private timer: NodeJS.Timeout | undefined;
  private last: string | undefined;
  private polling = false;
  private failing = false;

  constructor(private readonly o: ClusterWatchOptions) {}

  start(): this {
    this.timer = setInterval(() => void this.poll(), this.o.intervalMs ?? 1000);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.o.feed.size === 0) {
      // Nobody follows: forget the baseline. The first poll after a page connects then signals once,
      // covering a change made between that page's first read and this baseline.
      this.last = undefined;
      return;
    }
    if (this.polling) return;
    this.polling = true;
    try {
      const rows = await this.o.db.query<NodeMark>(
        `SELECT n.node_id, count(s.plugin_name)::int AS states, max(s.updated_at)::text AS updated
           FROM plugin_host_nodes n LEFT JOIN plugin_node_state s ON s.node_id = n.node_id
          WHERE n.node_id <> $1 AND n.heartbeat_at > $2
          GROUP BY n.node_id ORDER BY n.node_id`,
        [this.o.nodeId, new Date(Date.now() - this.o.liveWithinMs).toISOString()],
      );
      const mark = JSON.stringify(rows.map((r) => [r.node_id, Number(r.states), r.updated]));
      if (mark !== this.last) {
        this.last = mark;
        this.o.feed.cluster();
      }
      if (this.failing) this.o.log.info('console: other nodes’ state readable again');
      this.failing = false;
    } catch (err) {
      // The database is down: the pages see it on their next read (stale answers); one line, not one per second.
      if (!this.failing) this.o.log.warn({ err: describeError(err) }, 'console: cannot read other nodes’ state');
      this.failing = true;
    } finally {
      this.polling = false;
    }
  }
}
