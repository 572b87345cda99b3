import type { FastifyInstance } from 'fastify';
import { HostError } from '../errors/index.js';
import { PLUGIN_NAME_PATTERN } from '../model/index.js';
import type { AccessControl } from './access.js';
import { guard, principalOf } from './guard.js';
import { parseScopes, pluginsFor } from './scopes.js';
import { MAX_TOKEN_NAME } from './store.js';

export interface TokenRoutesOptions {
  access: AccessControl;
}

const ADMIN_BODY_LIMIT = 16 * 1024;
const MAX_AUDIT_PAGE = 500;

const tokenInfo = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    created_by: { type: 'string' },
    created_at: { type: 'string' },
    expires_at: { type: ['string', 'null'] },
    last_used_at: { type: ['string', 'null'] },
    revoked_at: { type: ['string', 'null'] },
  },
  additionalProperties: false,
} as const;

/**
 * Scoped tokens and the audit trail: `POST /tokens` (the only answer that
 * ever holds a token's secret), `GET /tokens`, `DELETE /tokens/:id`,
 * `GET /tokens/self` (what the caller's token may do) and `GET /audit`. Every
 * route is guarded by the scope table, like the other control-plane routes;
 * the response schemas list the fields that leave, so no other can.
 */
export async function tokenRoutes(app: FastifyInstance, o: TokenRoutesOptions): Promise<void> {
  guard(app, o.access);
  const security = [{ bearerAuth: [] }];

  app.post(
    '/tokens',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      schema: {
        tags: ['admin'],
        summary: 'Create a scoped token',
        description:
          'Creates a token holding `scopes` (read, admin, operate:NAME, publish:NAME; NAME may be *), optionally expiring at `expiresAt`. The answer is the only time the secret is shown: the database keeps its SHA-256. Needs `admin`.',
        security,
        body: {
          type: 'object',
          required: ['name', 'scopes'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_NAME },
            scopes: { type: 'array', minItems: 1, maxItems: 32, items: { type: 'string', maxLength: 80 } },
            expiresAt: { type: 'string', maxLength: 40, description: 'ISO 8601 date-time in the future' },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: { id: { type: 'string' }, token: { type: 'string' }, info: tokenInfo },
            additionalProperties: false,
          },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { name: string; scopes: unknown; expiresAt?: string };
      const scopes = parseScopes(body.scopes);
      let expiresAt: Date | undefined;
      if (body.expiresAt !== undefined) {
        expiresAt = new Date(body.expiresAt);
        if (Number.isNaN(expiresAt.getTime())) throw new HostError('PH_ERR_BAD_REQUEST', 'expiresAt must be an ISO 8601 date-time');
      }
      const created = await o.access.tokens.create({ name: body.name, scopes, expiresAt, createdBy: principalOf(req)?.name ?? 'unknown' });
      reply.code(201);
      return created;
    },
  );

  app.get(
    '/tokens',
    {
      schema: {
        tags: ['admin'],
        summary: 'List tokens',
        description: 'Every token with its scopes, creator, creation, last use, expiry and revocation; never a secret. Needs `admin`.',
        security,
        response: { 200: { type: 'array', items: tokenInfo } },
      },
    },
    async () => o.access.tokens.list(),
  );

  app.get(
    '/tokens/self',
    {
      schema: {
        tags: ['admin'],
        summary: "The caller's token",
        description: 'The name, id and scopes of the token the call carries, and the plugins it may operate or publish (`*`: every one).',
        security,
      },
    },
    async (req) => {
      const p = principalOf(req);
      const scopes = p?.scopes ?? [];
      return { name: p?.name, id: p?.id ?? null, scopes, operate: pluginsFor(scopes, 'operate'), publish: pluginsFor(scopes, 'publish') };
    },
  );

  app.delete(
    '/tokens/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Revoke a token',
        description:
          'Revokes the token: every node refuses it within seconds (a notification, and a cache of TOKEN_CACHE_MS at most). Needs `admin`.',
        security,
        params: {
          type: 'object',
          properties: { id: { type: 'string', maxLength: 100 } },
          required: ['id'],
        },
        response: { 200: tokenInfo },
      },
    },
    async (req) => o.access.tokens.revoke((req.params as { id: string }).id),
  );

  app.get(
    '/audit',
    {
      schema: {
        tags: ['admin'],
        summary: 'The audit trail',
        description:
          'Control-plane writes and refusals (and changes of plugin rows made by SQL directly), newest first. Filters: `plugin`, `token` (id or name), `since` (ISO 8601); `limit` (default 100, at most 500); `before` (an entry id: the next page). Needs `read`.',
        security,
        querystring: {
          type: 'object',
          properties: {
            plugin: { type: 'string', pattern: PLUGIN_NAME_PATTERN.source },
            token: { type: 'string', maxLength: 200 },
            since: { type: 'string', maxLength: 40 },
            before: { type: 'string', maxLength: 20 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_AUDIT_PAGE },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { plugin?: string; token?: string; since?: string; before?: string; limit?: number };
      let since: Date | undefined;
      if (q.since !== undefined) {
        since = new Date(q.since);
        if (Number.isNaN(since.getTime())) throw new HostError('PH_ERR_BAD_REQUEST', 'since must be an ISO 8601 date-time');
      }
      const entries = await o.access.audit.query({ plugin: q.plugin, token: q.token, since, before: q.before, limit: q.limit ?? 100 });
      const last = entries.at(-1);
      return { entries, next: entries.length === (q.limit ?? 100) && last !== undefined ? last.id : null };
    },
  );
}
