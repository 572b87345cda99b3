import type { ServerResponse } from 'node:http';
import type { LoadedVersion, RequestHandler } from '../runtime/index.js';
import { HostPaths } from './host-paths.js';
import { RouteTable } from './route-table.js';

const kVersion = Symbol('plugin-host.version');
type TaggedResponse = ServerResponse & { [kVersion]?: LoadedVersion | undefined };

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
   * The one 'close' listener every plugin response shares (no closure, no
   * `once` wrapper per request): `this` is the response, tagged with the
   * version that serves it.
   */
  private readonly finished: (this: TaggedResponse) => void;

  /** The paths the host owns; set once the host's routes are all registered, before any plugin loads. */
  private owned: HostPaths = HostPaths.none;

  constructor() {
    const open = this.open;
    this.finished = function (this: TaggedResponse) {
      open.delete(this);
      const v = this[kVersion];
      if (v !== undefined) {
        // counted per version, so a canary node can compare a candidate's 5xx ratio with its predecessor's
        v.answered++;
        if (this.statusCode >= 500) v.serverErrors++;
        v.release();
      }
      this[kVersion] = undefined;
    };
  }

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
      (res as TaggedResponse)[kVersion] = p;
      this.open.add(res);
      // 'close' fires once per response, so `on` is enough and cheaper than `once`
      res.on('close', this.finished);
      p.handle(req, res);
    };
  }
}
