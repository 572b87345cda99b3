import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ConfigChange, ConfigState, PluginAdmin } from '../admin/index.js';
import type { PluginRow } from '../db/index.js';
import { HostError } from '../errors/index.js';
import { ADMIN_BODY_LIMIT } from './hardening.js';

export interface ConfigRoutesOptions {
  admin: PluginAdmin;
  /** Waits (bounded) for this node to apply the change; true when it did. */
  settle(name: string): Promise<boolean>;
  /** The plugin's state on this node and every node, as the other admin routes answer it. */
  stateOf(row: PluginRow, extra: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Shared schemas of the admin routes. */
  schemas: { nameParams: object; errorResponses: Record<number, object> };
}

const MERGE_PATCH = 'application/merge-patch+json';

const problemList = {
  type: 'array',
  items: {
    type: 'object',
    properties: { pointer: { type: 'string', description: 'JSON pointer of the field' }, message: { type: 'string' } },
  },
} as const;

const configState = {
  type: 'object',
  description: 'A plugin configuration: the stored values (secret references as written, never resolved), the schema, the revision',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    config: { type: 'object', additionalProperties: true, description: 'Stored values; secret references as written' },
    effective: {
      type: ['object', 'null'],
      additionalProperties: true,
      description: 'Stored values with the schema defaults applied, references unresolved; null when they do not validate',
    },
    errors: { ...problemList, description: 'Why the stored values do not validate against the schema (empty when they do)' },
    schema: { type: ['object', 'null'], additionalProperties: true, description: 'The configSchema of the version this node loads' },
    schema_error: { type: ['object', 'null'], additionalProperties: true },
    revision: { type: 'integer', description: 'Grows with every change; 0 when nothing is stored' },
    updated_at: { type: ['string', 'null'] },
    updated_by: { type: 'string' },
  },
} as const;

const configChange = {
  ...configState,
  description: 'The configuration now stored, and the plugin state once this node applied it',
  properties: {
    ...configState.properties,
    action: { type: 'string' },
    changed: { type: 'boolean', description: 'False when the values equal what was stored (nothing written)' },
    settled: { type: 'boolean', description: 'True when this node applied the change before answering' },
    plugin: { type: 'object', additionalProperties: true, description: 'The plugin as GET /plugins/:name shows it' },
  },
} as const;

const ifMatch = {
  type: 'object',
  properties: {
    'if-match': { type: 'string', description: 'Write only if the stored revision is still this one (the ETag of GET), e.g. "12"' },
  },
} as const;

/** `If-Match: "12"` (or `12`, `W/"12"`) as a revision; undefined without the header; `*` matches any. */
function expectedRevision(req: FastifyRequest): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined || h.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,10})"?\s*$/.exec(h);
  if (m === null)
    throw new HostError('PH_ERR_BAD_REQUEST', `If-Match must be a configuration revision such as "12", got ${JSON.stringify(h)}`);
  return Number(m[1]);
}

function withEtag(reply: FastifyReply, state: ConfigState): ConfigState {
  reply.header('etag', `"${state.revision}"`);
  return state;
}

/**
 * `GET`, `PUT` and `PATCH /plugins/:name/config`, registered inside the admin
 * routes (same token, same limits). Bodies are read as any JSON and checked
 * here, so every refusal of a configuration, a body that is not an object
 * included, is `PH_ERR_PLUGIN_CONFIG_INVALID` naming the fields.
 */
export function configRoutes(app: FastifyInstance, o: ConfigRoutesOptions): void {
  const { nameParams, errorResponses } = o.schemas;
  // a merge patch is JSON with its own media type (RFC 7386)
  app.addContentTypeParser(MERGE_PATCH, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  const answer = async (reply: FastifyReply, change: ConfigChange) => {
    const settled = await o.settle(change.row.name);
    const plugin = await o.stateOf(change.row, {});
    return { ...withEtag(reply, change.state), action: 'configure', changed: change.changed, settled, plugin };
  };
  // who writes, and the revision the write is conditional on (`If-Match`)
  const writeOptions = (req: FastifyRequest) => {
    const expected = expectedRevision(req);
    return { by: `admin API (${req.ip})`, ...(expected === undefined ? {} : { expectedRevision: expected }) };
  };
  // the body is any JSON: the configuration's own check answers for it, naming the fields
  const anyBody = () => () => true;

  app.get(
    '/plugins/:name/config',
    {
      schema: {
        tags: ['admin'],
        summary: "A plugin's configuration",
        description:
          'The stored values (secret references as written: resolved values never leave the node that resolved them), the configSchema of the version this node loads, and the revision (also the ETag).',
        security: [{ bearerAuth: [] }],
        params: nameParams,
        response: { 200: configState, ...errorResponses },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      return withEtag(reply, await o.admin.config.get(name));
    },
  );

  app.put(
    '/plugins/:name/config',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      validatorCompiler: anyBody,
      schema: {
        tags: ['admin'],
        summary: "Replace a plugin's configuration",
        description:
          'The body is the whole configuration. It is validated against the configSchema (defaults applied, unknown properties refused when the schema says so; a secret reference {"$env": "NAME"} or {"$file": "/path"} stands for a value resolved on each node at load) and stored; every node reloads the plugin with it, or calls its onConfigChange. A refusal is 400 PH_ERR_PLUGIN_CONFIG_INVALID naming each field by JSON pointer, with nothing written.',
        security: [{ bearerAuth: [] }],
        params: nameParams,
        headers: ifMatch,
        body: { type: 'object', additionalProperties: true, description: 'The whole configuration' },
        response: { 200: configChange, ...errorResponses, 412: errorResponses[400] },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const change = await o.admin.config.put(name, req.body, writeOptions(req));
      return answer(reply, change);
    },
  );

  app.patch(
    '/plugins/:name/config',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      validatorCompiler: anyBody,
      schema: {
        tags: ['admin'],
        summary: "Change part of a plugin's configuration (JSON merge patch)",
        description:
          'A JSON merge patch (RFC 7386; application/merge-patch+json or application/json): objects merge, null removes a key, a secret reference replaces the value whole. The result is validated and stored as by PUT.',
        security: [{ bearerAuth: [] }],
        params: nameParams,
        headers: ifMatch,
        body: {
          content: {
            [MERGE_PATCH]: { schema: { type: 'object', additionalProperties: true } },
            'application/json': { schema: { type: 'object', additionalProperties: true } },
          },
        },
        response: { 200: configChange, ...errorResponses, 412: errorResponses[400] },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const change = await o.admin.config.patch(name, req.body, writeOptions(req));
      return answer(reply, change);
    },
  );
}
