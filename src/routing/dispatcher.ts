import type { ServerResponse } from 'node:http';
import type { LoadedVersion, RequestHandler } from '../runtime/index.js';
import { HostPaths } from './host-paths.js';
import { type RouteEntry, RouteTable } from './route-table.js';

type CloseListener = (this: ServerResponse) => void;

/**
 * The request path: a request under a path the host owns goes to the host's
 * own Fastify, whatever a plugin registered; any other is one lookup in the
 * current route table, a hit going to the owning plugin version (its
 * `handle`), a miss to the host (the 404 answer). The request path never
 * touches the database and never awaits.
 */
export class Dispatcher {
  private table: RouteTable = RouteTable.empty;
  private draining = false;
  /** Plugin responses not finished yet: told to close their connection when draining starts. */
  private readonly open = new Set<ServerResponse>();
  /**
   * The 'close' listener of the responses of each version, made once per
   * version (no closure per request, and nothing added to the response object,
   * whose shape stays the one Node's and Fastify's code is optimised for).
   */
  private readonly listeners = new WeakMap<LoadedVersion, CloseListener>();

  /** The paths the host owns; set once the host's routes are all registered, before any plugin loads. */
  private owned: HostPaths = HostPaths.none;

  get current(): RouteTable {
    return this.table;
  }

  get hostPaths(): HostPaths {
    return this.owned;
  }

  /** Fixes what the host owns (its routes are known once its Fastify instance is ready). */
  setHostPaths(paths: HostPaths): void {
    this.owned = paths;
  }

  /**
   * Shutdown: from now on every plugin answer, including those of requests
   * already in flight, carries `Connection: close`, so a keep-alive client
   * never sends another request on a connection that is about to close.
   * (The host's own routes get the same from Fastify while it closes.)
   */
  startDraining(): void {
    this.draining = true;
    for (const res of this.open) if (!res.headersSent) res.setHeader('connection', 'close');
  }

  /** Lets the named plugins (`*`: all) load routes that overlap other plugins' routes (`ROUTE_OVERLAP_ALLOW`). */
  allowRouteOverlap(names: Iterable<string>): void {
    this.table = this.table.allowingOverlap(names);
  }

  /** The atomic swap: one assignment. */
  swap(next: RouteTable): void {
    this.table = next;
  }

  handler(host: RequestHandler): RequestHandler {
    return (req, res) => {
      const url = req.url ?? '/';
      const e = this.owned.owns(url) ? undefined : this.table.lookup(req.method ?? 'GET', url);
      if (e === undefined) {
        host(req, res);
        return;
      }
      e.hits++;
      if (this.draining) res.setHeader('connection', 'close');
      const p = e.plugin;
      p.inflight++;
      this.open.add(res);
      // 'close' fires once per response, so `on` is enough and cheaper than `once`
      res.on('close', e.closed ?? this.listenerFor(e));
      p.handle(req, res);
    };
  }

  /** The 'close' listener of `e`'s version, kept on the route entry so the next request finds it in the entry it looked up. */
  private listenerFor(e: RouteEntry): CloseListener {
    const p = e.plugin;
    let listener = this.listeners.get(p);
    if (listener === undefined) {
      const open = this.open;
      const release = p.release;
      listener = function (this: ServerResponse) {
        open.delete(this);
        // counted per version, so a canary node can compare a candidate's 5xx ratio with its predecessor's
        p.answered++;
        if (this.statusCode >= 500) p.serverErrors++;
        release();
      };
      this.listeners.set(p, listener);
    }
    e.closed = listener;
    return listener;
  }
}
