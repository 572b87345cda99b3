import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { describeError } from '../errors/index.js';
import type { AccessControl, Principal } from './access.js';
import type { AuditEntry } from './audit.js';
import { isWrite, ROUTE_SCOPES, routeKey } from './route-scopes.js';

/** What the guard learnt of a request, for its audit entry. */
interface CallContext {
  requestId: string;
  principal: Principal | undefined;
}

const calls = new WeakMap<FastifyRequest, CallContext>();

/** The principal `guard` identified for this request (undefined on unguarded routes); handlers run only for admitted ones. */
export function principalOf(req: FastifyRequest): Principal | undefined {
  return calls.get(req)?.principal;
}

/** A caller's request id is kept when it is a plain token (it ties the audit entry to the caller's own logs). */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Guards every route of `app` (an encapsulated Fastify context): before the
 * body is read, `access.authorize` admits the call or throws a coded error;
 * every write and every refusal is then recorded in the audit trail: a
 * successful write before its answer leaves (the client that got its answer
 * finds the entry), a refusal or failure beside it (never delaying it). Each answer
 * carries `x-request-id`, the id its audit entry records.
 */
export function guard(app: FastifyInstance, access: AccessControl): void {
  // every route this context registers is guarded: listed, so a test can check the scope table covers each one
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      const key = routeKey(method, route.url);
      access.guarded.add(key);
      if (ROUTE_SCOPES[key] === undefined)
        app.log.error({ route: key }, `route ${key} has no scope in ROUTE_SCOPES: only admin may call it`);
    }
  });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    const ctx: CallContext = { requestId, principal: undefined };
    calls.set(req, ctx);
    reply.header('x-request-id', requestId);
    reply.header('www-authenticate', 'Bearer realm="plugin-host admin"');
    // authenticated first and kept: a refusal for want of a scope is audited under the token's name
    ctx.principal = await access.authenticate(req.headers.authorization, (p) => {
      ctx.principal = p;
    });
    access.permit(req, ctx.principal);
  });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const status = reply.statusCode;
    const refused = status === 401 || status === 403;
    if (!isWrite(req.method) && !refused) return payload;
    const ctx = calls.get(req);
    const entry: AuditEntry = {
      actor: ctx?.principal?.name ?? 'anonymous',
      token_id: ctx?.principal?.id ?? null,
      node_id: access.nodeId,
      via: 'api',
      action: `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`,
      plugin: pluginOf(req),
      target: targetOf(req, status, payload),
      outcome: status < 400 ? 'ok' : refused ? 'refused' : 'failed',
      status,
      code: status >= 400 ? codeOf(payload) : null,
      request_id: ctx?.requestId ?? null,
    };
    const failed = (err: unknown) => req.log.error({ err: describeError(err), audit: entry }, 'could not record an audit entry');
    if (entry.outcome !== 'ok') {
      access.audit.recordLater(entry, failed);
      return payload;
    }
    try {
      // awaited: a client that got its answer finds the entry of its change
      await access.audit.record(entry);
    } catch (err) {
      // the change is made: failing the answer would make the client retry a write that happened
      failed(err);
    }
    return payload;
  });
}

/** The plugin a call acts on: the `:name` of its URL, else the name its body gives (POST /plugins). */
function pluginOf(req: FastifyRequest): string | null {
  const name = (req.params as { name?: unknown } | undefined)?.name;
  if (typeof name === 'string') return name.slice(0, 200);
  const body = req.body as { name?: unknown; path?: unknown } | undefined;
  if (body !== null && typeof body === 'object') {
    if (typeof body.name === 'string') return body.name.slice(0, 200);
    if (typeof body.path === 'string') return (body.path.split(/[\\/]/).filter(Boolean).pop() ?? '').slice(0, 200) || null;
  }
  return null;
}

/** The token a `/tokens` call acted on: the `:id` revoked, or the id (never the secret) of the one created. */
function targetOf(req: FastifyRequest, status: number, payload: unknown): string | null {
  const id = (req.params as { id?: unknown } | undefined)?.id;
  if (typeof id === 'string') return id.slice(0, 100);
  if (req.routeOptions.url === '/tokens' && req.method === 'POST' && status === 201 && typeof payload === 'string') {
    try {
      const created = (JSON.parse(payload) as { id?: unknown }).id;
      return typeof created === 'string' ? created : null;
    } catch {
      return null;
    }
  }
  return null;
}

/** The `code` of a problem answer (serialized by the time `onSend` runs). */
function codeOf(payload: unknown): string | null {
  if (typeof payload !== 'string') return null;
  try {
    const code = (JSON.parse(payload) as { code?: unknown }).code;
    return typeof code === 'string' ? code.slice(0, 100) : null;
  } catch {
    return null;
  }
}
