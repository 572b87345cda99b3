import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { describeError } from '../errors/index.js';
import type { PluginManager } from '../manager/index.js';
import type { Dispatcher } from '../routing/index.js';
import type { LoadedVersion } from '../runtime/index.js';

export const OPENAPI_VERSION = '3.1.0';

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is free-form JSON
type Json = any;

interface PluginDoc {
  paths: Record<string, Record<string, Json>>;
  schemas: Record<string, Json>;
  /** Set when the plugin's schemas could not be described (its routes are listed without them). */
  warning?: string;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** What the document says of the host itself, beside its routes. */
function hostDocument(version: string): Json {
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: 'plugin-host',
      version,
      description:
        'The routes of one listener of this node. The data plane (PORT) serves the plugin routes, the read API and health; the control plane (ADMIN_PORT) serves the console, the admin API, the event feed and metrics, and its document lists the plugin routes with the data plane as their server. Plugin routes are those of the plugins loaded right now, tagged by plugin; the document is regenerated whenever a plugin loads, reloads or unloads.',
    },
    tags: [
      { name: 'plugins', description: 'Read the registered plugins and their state' },
      { name: 'admin', description: 'Change desired state (bearer token from ADMIN_TOKEN)' },
      { name: 'operations', description: 'Health, readiness, metrics, this document' },
      { name: 'console', description: 'The operator console and its event stream' },
    ],
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description:
            'The ADMIN_TOKEN the server was started with (scope admin), or a scoped token (ph_…) holding the scope the route needs',
        },
      },
    },
  };
}

/** A route as the document needs it: recorded from the host's `onRoute` hook. */
export interface DescribedRoute {
  method: string | string[];
  url: string;
  schema?: unknown;
}

/**
 * Runs `@fastify/swagger` over routes replayed (method, URL, schema; no-op
 * handlers, no validator compiled) on a throwaway Fastify instance, and
 * answers the document it generates. `@fastify/swagger` is loaded on the
 * first document asked for, not at start.
 */
async function swaggerOf(
  routes: readonly DescribedRoute[],
  document: Json,
  options: { sharedSchemas?: readonly unknown[]; schemaOf?: (r: DescribedRoute) => Json },
): Promise<Json> {
  const { default: fastifySwagger } = await import('@fastify/swagger');
  const temp = Fastify({ logger: false, exposeHeadRoutes: false });
  try {
    temp.setValidatorCompiler(() => () => true);
    temp.setSerializerCompiler(() => (data) => JSON.stringify(data));
    for (const sc of options.sharedSchemas ?? []) temp.addSchema(sc as Json);
    await temp.register(fastifySwagger, { openapi: document });
    const twins = new Set(routes.filter((r) => methods(r).includes('GET')).map((r) => r.url));
    for (const r of routes) {
      // Fastify adds a HEAD route beside every GET: the document lists the GET only
      const ms = methods(r).filter((m) => !(m === 'HEAD' && twins.has(r.url)));
      if (ms.length === 0) continue;
      const schema = options.schemaOf?.(r) ?? r.schema;
      temp.route({ method: ms as 'GET'[], url: r.url, ...(schema === undefined ? {} : { schema }), handler: async () => null });
    }
    await temp.ready();
    return temp.swagger() as Json;
  } finally {
    await temp.close().catch(() => {});
  }
}

function methods(r: DescribedRoute): string[] {
  return (Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toUpperCase());
}

/** Walks a JSON value and rewrites `$ref`s and `operationId`s with `fn`. */
function rewrite(value: Json, fn: (key: string, v: string) => string): Json {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, fn));
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = typeof v === 'string' ? fn(k, v) : rewrite(v, fn);
  return out;
}

/** Replaces references the document cannot resolve (to schemas it does not contain) by an open schema saying so. */
function neutraliseForeignRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(neutraliseForeignRefs);
  if (value === null || typeof value !== 'object') return value;
  if (typeof value.$ref === 'string' && !value.$ref.startsWith('#/')) {
    return { description: `shared schema ${value.$ref} (not described)` };
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = neutraliseForeignRefs(v);
  return out;
}

/**
 * Describes one plugin version's routes with `@fastify/swagger` by replaying
 * them (method, URL, schema; no-op handlers, no validator compiled) on a
 * throwaway Fastify instance. Component names and operation ids get the
 * plugin name as prefix so plugins never collide.
 */
async function describePlugin(p: LoadedVersion): Promise<PluginDoc> {
  const replay = async (withSchemas: boolean): Promise<PluginDoc> => {
    const doc = await swaggerOf(
      p.routes,
      { openapi: OPENAPI_VERSION, info: { title: p.name, version: p.version } },
      {
        sharedSchemas: withSchemas ? p.sharedSchemas() : [],
        schemaOf: (r) => {
          const raw = r.schema !== null && typeof r.schema === 'object' ? (r.schema as Record<string, unknown>) : {};
          const own = withSchemas ? raw : {};
          // the author's tags stay, the plugin's name is added (it groups the plugin's routes); `hide` stays the author's
          const authored = Array.isArray(raw.tags) ? raw.tags.filter((t): t is string => typeof t === 'string') : [];
          const tags = [...new Set([...authored, p.name])];
          return { ...own, tags, ...(raw.hide === true ? { hide: true } : {}) };
        },
      },
    );
    const prefix = (s: string) => `${p.name}.${s}`;
    const renamed = rewrite({ paths: doc.paths ?? {}, schemas: doc.components?.schemas ?? {} }, (k, v) => {
      if (k === '$ref' && v.startsWith('#/components/schemas/')) return `#/components/schemas/${prefix(v.slice(21))}`;
      if (k === 'operationId') return prefix(v);
      return v;
    });
    const schemas: Record<string, Json> = {};
    for (const [k, v] of Object.entries(renamed.schemas as Record<string, Json>)) schemas[prefix(k)] = v;
    return { paths: neutraliseForeignRefs(renamed.paths), schemas: neutraliseForeignRefs(schemas) };
  };
  try {
    return await replay(true);
  } catch (err) {
    const doc = await replay(false);
    return { ...doc, warning: `route schemas of ${p.name} could not be described: ${describeError(err)}` };
  }
}

/** Where the routes of a document answer (read when the document is built: ports are known once listening). */
export interface DocumentServers {
  /** The document's `servers`: the listener serving its host routes. */
  servers?: () => { url: string; description: string }[];
  /** Set when plugin routes answer on another listener: their path items name it in `servers`. */
  pluginServers?: () => { url: string; description: string }[];
}

/**
 * The live OpenAPI document: the host's own routes (recorded as they are
 * added, described once on first need) plus the routes of every plugin
 * version in the current route table. Built on demand and cached until the
 * manager reports a change.
 */
export class OpenApiDocument {
  private cache: Promise<Json> | undefined;
  private hostDoc: Promise<Json> | undefined;
  private readonly perPlugin = new WeakMap<LoadedVersion, Promise<PluginDoc>>();
  private readonly off: () => void;

  constructor(
    private readonly hostRoutes: readonly DescribedRoute[],
    private readonly version: string,
    private readonly dispatcher: Dispatcher,
    manager: PluginManager,
    private readonly log: FastifyBaseLogger,
    private readonly where: DocumentServers = {},
  ) {
    const invalidate = () => {
      this.cache = undefined;
    };
    manager.on('change', invalidate);
    manager.on('loaded', invalidate);
    manager.on('unloaded', invalidate);
    this.off = () => {
      manager.off('change', invalidate);
      manager.off('loaded', invalidate);
      manager.off('unloaded', invalidate);
    };
  }

  current(): Promise<Json> {
    if (this.cache !== undefined) return this.cache;
    const built = this.build();
    this.cache = built;
    built.catch(() => {
      if (this.cache === built) this.cache = undefined;
    });
    return built;
  }

  private pluginDoc(p: LoadedVersion): Promise<PluginDoc> {
    let d = this.perPlugin.get(p);
    if (d === undefined) {
      d = describePlugin(p);
      this.perPlugin.set(p, d);
    }
    return d;
  }

  private async build(): Promise<Json> {
    const plugins = [...this.dispatcher.current.plugins.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    this.hostDoc ??= swaggerOf(this.hostRoutes, hostDocument(this.version), {});
    const doc: Json = structuredClone(await this.hostDoc);
    const servers = this.where.servers?.() ?? [];
    if (servers.length > 0) doc.servers = servers;
    const pluginServers = this.where.pluginServers?.() ?? [];
    doc.paths ??= {};
    doc.components ??= {};
    doc.components.schemas ??= {};
    doc.tags ??= [];
    const docs = await Promise.all(plugins.map((p) => this.pluginDoc(p)));
    plugins.forEach((p, i) => {
      const pd = docs[i] as PluginDoc;
      if (pd.warning !== undefined) this.log.warn({ plugin: p.name }, pd.warning);
      doc.tags.push({
        name: p.name,
        description: `Plugin ${p.name} ${p.version}${p.metadata.description ? `: ${p.metadata.description}` : ''}`,
      });
      for (const [url, item] of Object.entries(pd.paths)) {
        doc.paths[url] ??= pluginServers.length > 0 ? { servers: pluginServers } : {};
        const target = doc.paths[url];
        for (const [method, op] of Object.entries(item)) {
          if (HTTP_METHODS.has(method) && target[method] !== undefined) continue; // first owner wins, as in the route table
          target[method] = op;
        }
      }
      Object.assign(doc.components.schemas, pd.schemas);
    });
    if (Object.keys(doc.components.schemas).length === 0) delete doc.components.schemas;
    return doc;
  }

  close(): void {
    this.off();
  }
}

/** Response headers of the Swagger UI app that the host's own reply sets itself. */
const HOP_BY_HOP = new Set(['connection', 'content-length', 'date', 'keep-alive', 'transfer-encoding']);

/**
 * `GET /openapi.json` (the live document) and Swagger UI at `/docs`, which
 * shows the same document. Swagger UI (its plugin, static files and their
 * routes) lives in an app of its own built on the first request for `/docs`:
 * a node nobody browses never loads it. The host's routes answer with what
 * that app answers, so the host's hooks and headers apply as to any route.
 */
export async function openapiRoutes(app: FastifyInstance, o: { document: OpenApiDocument }): Promise<void> {
  app.get(
    '/openapi.json',
    { schema: { tags: ['operations'], summary: 'This OpenAPI document: core, admin and currently loaded plugin routes' } },
    async () => o.document.current(),
  );
  let ui: Promise<FastifyInstance> | undefined;
  const serveUi = async (req: FastifyRequest, reply: FastifyReply) => {
    ui ??= swaggerUiApp(o.document).catch((err: unknown) => {
      ui = undefined;
      throw err;
    });
    const res = await (await ui).inject({ method: req.method as 'GET', url: req.url, headers: req.headers });
    reply.code(res.statusCode);
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) reply.header(name, value);
    }
    return res.rawPayload.length === 0 ? reply.send() : reply.send(res.rawPayload);
  };
  app.get('/docs', { schema: { hide: true } }, serveUi);
  app.get('/docs/*', { schema: { hide: true } }, serveUi);
}

async function swaggerUiApp(document: OpenApiDocument): Promise<FastifyInstance> {
  const [{ default: fastifySwagger }, { default: fastifySwaggerUi }] = await Promise.all([
    import('@fastify/swagger'),
    import('@fastify/swagger-ui'),
  ]);
  const ui = Fastify({ logger: false });
  // Swagger UI reads the document from @fastify/swagger: a static placeholder, replaced per request by the live one
  await ui.register(fastifySwagger, { mode: 'static', specification: { document: hostDocument('') } });
  await ui.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiHooks: {
      preHandler: async (req: FastifyRequest) => {
        (req as FastifyRequest & { openapiDocument?: Json }).openapiDocument = await document.current();
      },
    },
    transformSpecificationClone: false,
    transformSpecification: (spec, req) => (req as FastifyRequest & { openapiDocument?: Json }).openapiDocument ?? spec,
  });
  await ui.ready();
  return ui;
}
