import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CoreRoute } from './route-table.js';
import { RouteTable } from './route-table.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The request path: one lookup in the current route table; a hit goes to the
 * owning plugin version's Fastify instance, a miss to the host's own Fastify
 * (core routes and the 404 answer). The request path never touches the
 * database and never awaits.
 */
export class Dispatcher {
  private table: RouteTable = RouteTable.empty;

  constructor(readonly coreRoutes: readonly CoreRoute[]) {}

  get current(): RouteTable {
    return this.table;
  }

  /** The atomic swap: one assignment. */
  swap(next: RouteTable): void {
    this.table = next;
  }

  handler(host: RequestHandler): RequestHandler {
    return (req, res) => {
      const e = this.table.lookup(req.method ?? 'GET', req.url ?? '/');
      if (e === undefined) {
        host(req, res);
        return;
      }
      e.hits++;
      const p = e.plugin;
      p.inflight++;
      res.once('close', p.release);
      (p.server as unknown as { routing: RequestHandler }).routing(req, res);
    };
  }
}
