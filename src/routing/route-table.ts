import type { ServerResponse } from 'node:http';
import FindMyWay from 'find-my-way';
import { HostError } from '../errors/index.js';
import type { LoadedVersion } from '../runtime/index.js';
import type { HostPaths } from './host-paths.js';
import { checkOverlap } from './route-overlap.js';

// Mirrors Fastify's router defaults so a path matches here exactly when it matches in the plugin's instance.
const ROUTER_OPTIONS = { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 100 } as const;

type Router = FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;

const noop = () => {};

/** One route of one plugin version. `hits` counts the requests dispatched to it (read by the metrics). */
export interface RouteEntry {
  readonly plugin: LoadedVersion;
  readonly method: string;
  readonly url: string;
  hits: number;
  /** The dispatcher's 'close' listener for the responses of this entry's version (set on its first request). */
  closed: ((this: ServerResponse) => void) | undefined;
}

// One entry per version and route, kept across table rebuilds so a version's counts never reset while it serves.
const entriesByPlugin = new WeakMap<LoadedVersion, Map<string, RouteEntry>>();

function entryOf(plugin: LoadedVersion, method: string, url: string): RouteEntry {
  let m = entriesByPlugin.get(plugin);
  if (m === undefined) {
    m = new Map();
    entriesByPlugin.set(plugin, m);
  }
  const key = `${method} ${url}`;
  let e = m.get(key);
  if (e === undefined) {
    e = { plugin, method, url, hits: 0, closed: undefined };
    m.set(key, e);
  }
  return e;
}

/** The route entries (with their request counts) of one plugin version that has been in a table. */
export function routeEntries(plugin: LoadedVersion): RouteEntry[] {
  return [...(entriesByPlugin.get(plugin)?.values() ?? [])];
}

function normalizePattern(url: string): string {
  return url.replace(/:[^/]+/g, ':');
}

// find-my-way's own rule: a last parameter followed by `?` is optional and registers two paths
const OPTIONAL_PARAM = /(\/:[^/()]*?)\?(\/?)/;

/**
 * The keys under which a route can collide with another plugin's. find-my-way
 * refuses a second route only when method and pattern (parameter names aside)
 * are equal; a key is that pattern with every parameter (and its regex or
 * suffix) reduced to ':', so equal keys refuse at least every such pair.
 */
function routeKeys(method: string, url: string): string[] {
  if (!OPTIONAL_PARAM.test(url)) return [`${method} ${normalizePattern(url)}`];
  const full = url.replace(OPTIONAL_PARAM, '$1$2');
  const without = url.replace(OPTIONAL_PARAM, '$2') || '/';
  return [`${method} ${normalizePattern(full)}`, `${method} ${normalizePattern(without)}`];
}

// A version's routes, their conflict keys and entries, worked out once: each load rebuilds the table from
// every serving version's routes, and at start a hundred loads would otherwise redo all of it a hundred times.
const keyedRoutes = new WeakMap<LoadedVersion, ReadonlyArray<{ keys: string[]; entry: RouteEntry }>>();

function keyedRoutesOf(p: LoadedVersion): ReadonlyArray<{ keys: string[]; entry: RouteEntry }> {
  let k = keyedRoutes.get(p);
  if (k === undefined) {
    k = p.routes.map((r) => ({ keys: routeKeys(r.method, r.url), entry: entryOf(p, r.method, r.url) }));
    keyedRoutes.set(p, k);
  }
  return k;
}

/**
 * Which plugin version owns which method and path. Immutable: a change builds
 * a new table (finding conflicts before anything is swapped) and the
 * dispatcher switches to it in one assignment. Requests that already looked up
 * the old table finish on the version they found.
 *
 * The find-my-way router of a table is derived from its route list on the
 * first lookup: a table replaced before it serves a request (start-up loads
 * plugins one after another) never builds one, so loading n plugins costs
 * O(n) route insertions instead of O(n²).
 */
export class RouteTable {
  static readonly empty = new RouteTable([], new Map());

  private router: Router | undefined;

  private constructor(
    /** Every route of the table, in build order; conflicts were refused by `build`. */
    private readonly entries: readonly RouteEntry[],
    /** plugin name -> version in this table */
    readonly plugins: ReadonlyMap<string, LoadedVersion>,
    /** Plugins whose routes may overlap other plugins' (`ROUTE_OVERLAP_ALLOW`; `*`: every plugin); kept by every derived table. */
    readonly overlapAllowed: ReadonlySet<string> = new Set(),
  ) {}

  /** This table, with `names` allowed to load routes that overlap other plugins' routes. */
  allowingOverlap(names: Iterable<string>): RouteTable {
    return new RouteTable(this.entries, this.plugins, new Set(names));
  }

  private compiled(): Router {
    if (this.router !== undefined) return this.router;
    const router = FindMyWay(ROUTER_OPTIONS);
    for (const e of this.entries) {
      try {
        router.on(e.method as FindMyWay.HTTPMethod, e.url, noop, e);
      } catch {
        // a duplicate inside one plugin (its own Fastify instance refused it already);
        // routes of different plugins that could collide were refused by `build`
      }
    }
    this.router = router;
    return router;
  }

  /** The version owning `method url`, or undefined. `url` may carry a query string. */
  find(method: string, url: string): LoadedVersion | undefined {
    return this.lookup(method, url)?.plugin;
  }

  /** The route entry matching `method url` (the dispatcher counts a hit on it), or undefined. */
  lookup(method: string, url: string): RouteEntry | undefined {
    const hit = (this.router ?? this.compiled()).find(method as FindMyWay.HTTPMethod, url);
    return hit === null ? undefined : (hit.store as RouteEntry);
  }

  /**
   * Builds a table from `plugins`, in order: a plugin whose route conflicts
   * with an earlier one, or that could match a path the host owns, makes the build throw
   * `PH_ERR_ROUTE_CONFLICT` / `PH_ERR_ROUTE_RESERVED` naming both sides.
   */
  static build(plugins: readonly LoadedVersion[], host: HostPaths, overlapAllowed: ReadonlySet<string> = new Set()): RouteTable {
    const owners = new Map<string, LoadedVersion>();
    const byName = new Map<string, LoadedVersion>();
    const entries: RouteEntry[] = [];
    for (const p of plugins) {
      checkReservedOnce(p, host);
      for (const r of keyedRoutesOf(p)) {
        for (const key of r.keys) {
          const owner = owners.get(key);
          if (owner !== undefined && owner !== p) throw conflict(p, owner, r.entry.method, r.entry.url);
          owners.set(key, p);
        }
        entries.push(r.entry);
      }
      byName.set(p.name, p);
    }
    return new RouteTable(entries, byName, overlapAllowed);
  }

  /**
   * The table with `plugin` added or replacing its previous version; `this` is
   * unchanged. Besides the conflicts `build` refuses, a route of `plugin` that
   * could answer a URL another plugin's route answers is refused
   * (`PH_ERR_ROUTE_OVERLAP`) unless the operator allowed `plugin` to overlap.
   */
  with(plugin: LoadedVersion, host: HostPaths): RouteTable {
    const others = [...this.plugins.values()].filter((p) => p.name !== plugin.name);
    const table = RouteTable.build([...others, plugin], host, this.overlapAllowed);
    if (!this.overlapAllowed.has('*') && !this.overlapAllowed.has(plugin.name)) checkOverlap(plugin, others);
    return table;
  }

  without(name: string, host: HostPaths): RouteTable {
    if (!this.plugins.has(name)) return this;
    return RouteTable.build(
      [...this.plugins.values()].filter((p) => p.name !== name),
      host,
      this.overlapAllowed,
    );
  }
}

function conflict(p: LoadedVersion, other: LoadedVersion | undefined, method: string, url: string, cause?: unknown): HostError {
  const owner = other === undefined ? 'another plugin' : `plugin "${other.name}"`;
  return new HostError('PH_ERR_ROUTE_CONFLICT', `${p.name}: route ${method} ${url} is already served by ${owner}`, {
    cause,
    details: { method, url, plugin: p.name, owner: other?.name },
  });
}

// A version's routes never change: once they passed against the host's paths, they pass again.
const reservedChecked = new WeakMap<HostPaths, WeakSet<LoadedVersion>>();

function checkReservedOnce(p: LoadedVersion, host: HostPaths): void {
  let checked = reservedChecked.get(host);
  if (checked === undefined) {
    checked = new WeakSet();
    reservedChecked.set(host, checked);
  }
  if (checked.has(p)) return;
  for (const r of p.routes) host.check(p.name, r.method, r.url);
  checked.add(p);
}
