import type { Need } from './scopes.js';

/** How a route's need is found: a fixed scope, or a plugin scope for the `:name` in its URL. */
export type RouteScope = 'any' | 'read' | 'admin' | 'operate' | 'publish';

/**
 * The one table of what each control-plane route needs, keyed by method and
 * Fastify URL pattern. A guarded route missing here is refused to every token
 * but `admin` (fail closed), and the route-table test fails naming it: adding
 * a control-plane route means deciding its scope here.
 */
export const ROUTE_SCOPES: Readonly<Record<string, RouteScope>> = {
  'GET /plugins/:name/config': 'read',
  'PUT /plugins/:name/config': 'operate',
  'PATCH /plugins/:name/config': 'operate',
  'POST /plugins/:name/enable': 'operate',
  'POST /plugins/:name/disable': 'operate',
  'POST /plugins/:name/toggle': 'operate',
  'POST /plugins/:name/reload': 'operate',
  'POST /plugins/:name/isolation': 'operate',
  'PUT /plugins/:name/source': 'publish',
  'DELETE /plugins/:name': 'publish',
  'POST /plugins/:name/rollback': 'publish',
  'POST /plugins/:name/rollout': 'publish',
  'POST /plugins/:name/rollout/promote': 'publish',
  'POST /plugins/:name/rollout/abort': 'publish',
  // registers a directory of the server's own disk, named by the body: an operator's act
  'POST /plugins': 'admin',
  // what the caller's own token may do (the console shows only that)
  'GET /tokens/self': 'any',
  'GET /tokens': 'admin',
  'POST /tokens': 'admin',
  'DELETE /tokens/:id': 'admin',
  'GET /audit': 'read',
  // the console's live feed: only names of plugins that changed, which the public reads show anyway; a token is
  // needed so that a slot goes to a known caller (anonymous clients cannot fill the feed)
  'GET /events': 'any',
};

/** The table key of a route: HEAD is answered by the GET route, so it needs what GET needs. */
export function routeKey(method: string, url: string): string {
  return `${method === 'HEAD' ? 'GET' : method} ${url}`;
}

/** What a call needs; undefined when the route is not in the table. */
export function needOf(method: string, url: string, params: unknown): Need | undefined {
  const scope = ROUTE_SCOPES[routeKey(method, url)];
  if (scope === undefined) return undefined;
  if (scope === 'any' || scope === 'read' || scope === 'admin') return { kind: scope };
  const name = (params as { name?: unknown } | undefined)?.name;
  return { kind: scope, plugin: typeof name === 'string' ? name : '' };
}

/** Whether a route writes: writes (and every refusal) are audited, reads are not. */
export function isWrite(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}
