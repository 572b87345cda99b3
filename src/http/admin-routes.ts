import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import type { PluginAdmin } from '../admin/index.js';
import type { PluginRepository, PluginRow, PluginWithEndpoints } from '../db/index.js';
import { describeError, HostError, pluginNotFound } from '../errors/index.js';
import type { PluginManager } from '../manager/index.js';
import {
  assertPluginName,
  ISOLATION_MODES,
  type IsolationMode,
  PLUGIN_NAME_PATTERN,
  PLUGIN_STATUSES,
  type PluginStatus,
} from '../model/index.js';
import type { Releases } from '../releases/index.js';
import { type AccessControl, guard } from '../tokens/index.js';
import { configRoutes } from './config-routes.js';
import { ADMIN_BODY_LIMIT } from './hardening.js';
import type { LazySchemaCompilers } from './lazy-compilers.js';
import { pluginView } from './plugin-view.js';
import { releaseAdminRoutes } from './release-routes.js';

export interface AdminRoutesOptions {
  /** Who may call which route (`ADMIN_TOKEN` and scoped tokens); audits every write and refusal. */
  access: AccessControl;
  admin: PluginAdmin;
  repo: PluginRepository;
  manager: PluginManager;
  nodeId: string;
  liveWithinMs: number;
  /** Bound on waiting for this node to apply a change before answering. */
  settleTimeoutMs: number;
  /** Rollbacks and staged rollouts. */
  releases: Releases;
  /** Largest body `PUT /plugins/:name/source` accepts (`UPLOAD_LIMIT_MB`). */
  uploadLimitBytes: number;
  /** The host's schema compilers (compiled on first use). */
  schemas: LazySchemaCompilers;
}

const NAME_PATTERN = PLUGIN_NAME_PATTERN.source;

const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME_PATTERN, description: 'Plugin name' } },
  required: ['name'],
  additionalProperties: false,
} as const;

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details with a stable code',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', pattern: '^PH_ERR_[A-Z_]+$' },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
  additionalProperties: true,
} as const;

const pluginStateSchema = {
  type: 'object',
  description: 'The plugin row, what this node serves and the action taken',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    status: { type: 'string', enum: [...PLUGIN_STATUSES] },
    generation: { type: 'integer' },
    artifact_hash: { type: ['string', 'null'] },
    state: { type: 'string' },
    action: { type: 'string' },
    changed: { type: 'boolean' },
    settled: { type: 'boolean', description: 'True when this node applied the change before answering' },
  },
} as const;

const errorResponses = {
  400: problemSchema,
  409: problemSchema,
  401: problemSchema,
  403: problemSchema,
  404: problemSchema,
  413: problemSchema,
  422: problemSchema,
  503: problemSchema,
} as const;

/**
 * The admin API: every route writes desired state to the database (the nodes,
 * this one included, react to the notification), then waits a bounded time
 * for this node to apply it and answers the resulting state.
 *
 * Guarded by `Authorization: Bearer <token>` (`ADMIN_TOKEN` or a scoped
 * token holding the scope `ROUTE_SCOPES` names), checked before the body is
 * read; without a configured `ADMIN_TOKEN` every admin route answers 403
 * saying how to enable it. Every write and refusal is audited. Bodies are limited to
 * `ADMIN_BODY_LIMIT`; names and paths are validated; every rejection is a
 * problem document with a stable code and nothing written.
 */
export async function adminRoutes(app: FastifyInstance, o: AdminRoutesOptions): Promise<void> {
  // Strict validation: unknown properties are refused (Fastify's default strips them), types are not coerced.
  let ajv: Ajv | undefined;
  const strict = () =>
    (ajv ??= new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: false, allErrors: false, strict: false }));
  app.setValidatorCompiler(
    o.schemas.validatorCompiler(
      () =>
        ({ schema }) =>
          strict().compile(schema as object),
    ),
  );

  guard(app, o.access);
  // Name checks run before schema validation so a bad name gets its own code.
  app.addHook('preValidation', async (req) => {
    const params = req.params as { name?: unknown } | undefined;
    if (params !== undefined && 'name' in params) assertPluginName(params.name);
  });

  async function settle(name: string): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), o.settleTimeoutMs);
    });
    try {
      return await Promise.race([o.manager.reconcile(name).then(() => true), bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function stateOf(row: PluginRow, extra: Record<string, unknown>): Promise<Record<string, unknown>> {
    let full: PluginWithEndpoints | undefined;
    let nodes: Awaited<ReturnType<PluginRepository['nodes']['views']>> | undefined;
    try {
      full = await o.repo.getByName(row.name);
      if (full !== undefined) nodes = await o.repo.nodes.views(row.name, o.liveWithinMs);
    } catch (err) {
      app.log.warn({ plugin: row.name, err: describeError(err) }, 'could not re-read plugin after an admin change');
    }
    return { ...pluginView(full ?? { ...row, endpoints: [] }, o.manager.snapshot(row.name), nodes, o.nodeId), ...extra };
  }

  const common = (summary: string, description: string) => ({
    bodyLimit: ADMIN_BODY_LIMIT,
    schema: {
      tags: ['admin'],
      summary,
      description,
      security: [{ bearerAuth: [] }],
      params: nameParams,
      response: { 200: pluginStateSchema, ...errorResponses },
    },
  });

  releaseAdminRoutes(app, {
    releases: o.releases,
    nodeId: o.nodeId,
    common,
    settle,
    stateOf,
    row: async (name) => {
      const row = await o.repo.getByName(name);
      if (row === undefined) throw pluginNotFound(name);
      return row;
    },
  });

  app.post('/plugins/:name/enable', common('Enable a plugin', 'Sets the desired status to active; every node loads it.'), async (req) => {
    const { name } = req.params as { name: string };
    const { row, changed } = await o.admin.setStatus(name, 'active');
    const settled = await settle(name);
    return stateOf(row, { action: 'enable', changed, settled });
  });

  app.post(
    '/plugins/:name/disable',
    common('Disable a plugin', 'Sets the desired status to inactive; every node unloads it.'),
    async (req) => {
      const { name } = req.params as { name: string };
      const { row, changed } = await o.admin.setStatus(name, 'inactive');
      const settled = await settle(name);
      return stateOf(row, { action: 'disable', changed, settled });
    },
  );

  const isolation = common(
    'Set where a plugin runs',
    'Sets the isolation mode: `inline` (the serving thread), `worker` (a worker thread of its own with a heap cap, a request deadline and a stall detector), or null for the host default (PLUGIN_ISOLATION). Every node reloads the plugin blue/green into that runtime.',
  );
  app.post(
    '/plugins/:name/isolation',
    {
      ...isolation,
      schema: {
        ...isolation.schema,
        body: {
          type: 'object',
          required: ['mode'],
          additionalProperties: false,
          properties: { mode: { type: ['string', 'null'], enum: [...ISOLATION_MODES, null] } },
        },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      const { mode } = req.body as { mode: IsolationMode | null };
      const { row, changed } = await o.admin.setIsolation(name, mode);
      const settled = await settle(name);
      return stateOf(row, { action: 'isolation', changed, settled });
    },
  );

  app.post('/plugins/:name/toggle', common('Toggle a plugin', 'Flips the desired status between active and inactive.'), async (req) => {
    const { name } = req.params as { name: string };
    const row = await o.admin.toggle(name);
    const settled = await settle(name);
    return stateOf(row, { action: 'toggle', changed: true, settled });
  });

  app.post(
    '/plugins/:name/reload',
    common(
      'Recompile and reload a plugin',
      'Recompiles the plugin from source on this node, publishes the artifact and bumps its generation so every node reloads it. A compile error answers 422 with file:line:column and changes nothing.',
    ),
    async (req) => {
      const { name } = req.params as { name: string };
      const { row, recompiled } = await o.admin.reload(name);
      const settled = await settle(name);
      return stateOf(row, { action: 'reload', changed: true, recompiled, settled });
    },
  );

  app.delete(
    '/plugins/:name',
    common(
      'Remove a plugin',
      'Deletes the plugin row; every node unloads it. The source directory is left alone, and the removal is remembered: discovery and watch mode do not register the plugin again until it is registered explicitly (POST /plugins). See GET /plugins?removed=true.',
    ),
    async (req) => {
      const { name } = req.params as { name: string };
      const row = await o.admin.remove(name, `admin API on ${o.nodeId}`);
      const settled = await settle(name);
      return {
        ...pluginView({ ...row, endpoints: [] }, o.manager.snapshot(name), undefined, o.nodeId),
        registered: false,
        state: 'unloaded',
        action: 'remove',
        changed: true,
        settled,
      };
    },
  );

  // Plugin archives: read whole (bounded by UPLOAD_LIMIT_MB, past which Fastify answers 413 unread) and checked by the reader.
  app.addContentTypeParser(
    ['application/gzip', 'application/x-gzip'],
    { parseAs: 'buffer', bodyLimit: o.uploadLimitBytes },
    (_req, body, done) => done(null, body),
  );

  app.put(
    '/plugins/:name/source',
    {
      bodyLimit: o.uploadLimitBytes,
      schema: {
        tags: ['admin'],
        summary: 'Upload a plugin',
        description:
          'Installs or updates a plugin from a tar.gz of its directory (`content-type: application/gzip`, `plugin-host push` builds one). The archive is checked (no links, device files, absolute or `..` paths; bounded entries and unpacked size), unpacked into a directory the host owns, compiled and trial-loaded; then it is stored in the database beside its artifact, so every node serves it and any node can recompile it. 201 for a new plugin, 200 for a new version; a compile or load failure answers 422 with file:line:column and stores nothing. The name in the URL must equal the metadata name.',
        security: [{ bearerAuth: [] }],
        params: nameParams,
        response: { 200: pluginStateSchema, 201: pluginStateSchema, ...errorResponses, 415: problemSchema },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      if (!Buffer.isBuffer(req.body)) throw new HostError('PH_ERR_UPLOAD_NOT_GZIP', 'send the archive with content-type: application/gzip');
      const { row, created } = await o.admin.upload(name, req.body);
      const settled = await settle(name);
      reply.code(created ? 201 : 200);
      return stateOf(row, { action: created ? 'upload' : 'upload-version', changed: true, settled });
    },
  );

  app.post(
    '/plugins',
    {
      bodyLimit: ADMIN_BODY_LIMIT,
      schema: {
        tags: ['admin'],
        summary: 'Register a plugin directory',
        description:
          'Registers a directory directly inside PLUGINS_DIR (given by name or absolute path). The plugin is compiled and trial-loaded first; a failure answers 422 and registers nothing.',
        security: [{ bearerAuth: [] }],
        body: {
          type: 'object',
          required: ['path'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 4096, description: 'Directory inside PLUGINS_DIR' },
            name: { type: 'string', pattern: NAME_PATTERN, description: 'Must equal the directory name when given' },
            status: { type: 'string', enum: [...PLUGIN_STATUSES], default: 'active' },
          },
        },
        response: { 201: pluginStateSchema, ...errorResponses },
      },
    },
    async (req, reply) => {
      const body = req.body as { path: string; name?: string; status?: PluginStatus };
      const row = await o.admin.register(body.path, {
        ...(body.name === undefined ? {} : { name: body.name }),
        ...(body.status === undefined ? {} : { status: body.status }),
      });
      const name = row.name;
      const settled = await settle(name);
      reply.code(201);
      return stateOf(row, { action: 'register', changed: true, settled });
    },
  );

  configRoutes(app, { admin: o.admin, settle, stateOf, schemas: { nameParams, errorResponses } });
}
