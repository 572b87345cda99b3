import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HostError } from '../errors/index.js';

/** Who sent a request, as the one authentication function decided it. */
export interface Caller {
  /**
   * A stable name of the credential the request carried: the event feed caps
   * streams per caller with it. Never the credential itself.
   */
  readonly id: string;
}

/** Decides who the caller of a control-plane request is; throws a coded HostError when nobody is. */
export type Authenticate = (req: FastifyRequest, reply: FastifyReply) => Caller;

/** Hash both sides to a fixed length so the comparison takes the same time whatever was sent. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * The one place the host decides who a caller is: `Authorization: Bearer
 * <token>` compared (in constant time) with `ADMIN_TOKEN`. Every route that
 * needs a caller (the admin writes, the event feed) goes through the function
 * this returns, so another kind of credential replaces this comparison here
 * and nowhere else. Without a configured token every such route answers 403
 * saying how to enable it.
 */
export function bearerAuthentication(token: string | undefined): Authenticate {
  const expected = token === undefined ? undefined : digest(token);
  return (req, reply) => {
    if (expected === undefined) {
      throw new HostError(
        'PH_ERR_ADMIN_DISABLED',
        'the admin API is disabled: start the server with ADMIN_TOKEN set (at least 8 characters) and send it as "Authorization: Bearer <token>"',
      );
    }
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    reply.header('www-authenticate', 'Bearer realm="plugin-host admin"');
    if (m === null) {
      throw new HostError('PH_ERR_UNAUTHORIZED', 'admin routes need the header "Authorization: Bearer <ADMIN_TOKEN>"');
    }
    if (!timingSafeEqual(digest(m[1] as string), expected)) throw new HostError('PH_ERR_UNAUTHORIZED', 'the admin token is not valid');
    return { id: 'admin' };
  };
}
