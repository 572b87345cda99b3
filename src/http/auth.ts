import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl } from '../tokens/index.js';

/** Who sent a request, as the one authentication function decided it. */
export interface Caller {
  /**
   * A stable name of the credential the request carried: the event feed caps
   * streams per caller with it. Never the credential itself.
   */
  readonly id: string;
}

/** Decides who the caller of a control-plane request is; throws a coded HostError when nobody is. */
export type Authenticate = (req: FastifyRequest, reply: FastifyReply) => Caller | Promise<Caller>;

/**
 * The one place a control-plane route outside the admin API's guard (the
 * event feed) learns who its caller is: the bearer token, `ADMIN_TOKEN` or a
 * scoped token, checked by the same access control as every admin route,
 * against the scope `ROUTE_SCOPES` names for the route (a revoked token is
 * refused here as everywhere). Without a configured `ADMIN_TOKEN` it answers
 * 403 saying how to enable it. `routes` names the routes (`METHOD /url`) that use it.
 */
export function tokenAuthentication(access: AccessControl, routes: readonly string[]): Authenticate {
  // listed beside the admin API's routes, so the scope table is checked against these too
  for (const r of routes) access.guarded.add(r);
  return async (req, reply) => {
    reply.header('www-authenticate', 'Bearer realm="plugin-host admin"');
    const principal = await access.authenticate(req.headers.authorization);
    access.permit(req, principal);
    return { id: principal.id ?? principal.name };
  };
}
