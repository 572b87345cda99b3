import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { deepFreeze, type JsonObject } from '../../config/plugins/index.js';
import { describeError, HostError, PROBLEM_CONTENT_TYPE, pluginProblem } from '../../errors/index.js';
import type { PluginContext, PluginFactory, PluginInterface, PluginMetadata } from '../../sdk/index.js';
import { assertNoForbiddenImports } from '../confine/modules.js';
import { callHook } from '../hooks.js';
import { validateMetadata } from '../metadata.js';
import { inPluginScope } from '../plugin-scope.js';
import type { LoadRequest, RegisteredRoute } from '../types.js';
import { evaluateBundle, PluginTimers } from './evaluate.js';
import { LoadedPlugin } from './loaded-plugin.js';
import { guardedPluginLogger, nextRequestId } from './plugin-log.js';

function assertInstance(name: string, inst: unknown): asserts inst is PluginInterface {
  if (inst === null || typeof inst !== 'object') {
    throw new HostError(
      'PH_ERR_LOAD_BAD_INSTANCE',
      `${name}: newPlugin() returned ${inst === null ? 'null' : typeof inst}, expected an object`,
    );
  }
  const missing = (['initialize', 'getMetadata', 'registerRoutes', 'cleanup'] as const).filter(
    (k) => typeof (inst as Record<string, unknown>)[k] !== 'function',
  );
  if (missing.length > 0) {
    throw new HostError('PH_ERR_LOAD_BAD_INSTANCE', `${name}: newPlugin() returned an object without ${missing.join(', ')}()`);
  }
}

/** Evaluates the code and returns the factory. */
function factoryOf(req: LoadRequest, timers: PluginTimers): PluginFactory {
  if (req.code.kind === 'static') return req.code.factory;
  const confined = req.confined === true;
  if (confined) assertNoForbiddenImports(req.name, req.code.bundle);
  const exports = evaluateBundle(req.name, req.code.bundle, req.code.filename, timers, confined);
  const factory = exports.newPlugin ?? (exports.default as Record<string, unknown> | undefined)?.newPlugin;
  if (typeof factory !== 'function') {
    throw new HostError('PH_ERR_LOAD_NO_FACTORY', `${req.name}: entry file does not export a newPlugin() function`);
  }
  return factory as PluginFactory;
}

/** Evaluate + factory + metadata, without running any lifecycle hook: the check made before registering. */
export function trialLoad(req: LoadRequest): PluginMetadata {
  return inPluginScope(req.name, trialLoadInScope, req);
}

function trialLoadInScope(req: LoadRequest): PluginMetadata {
  const timers = new PluginTimers(() => {});
  try {
    const factory = factoryOf(req, timers);
    const inst = instantiate(req.name, factory);
    return readMetadata(req.name, inst);
  } finally {
    timers.dispose();
  }
}

function instantiate(name: string, factory: PluginFactory): PluginInterface {
  let inst: unknown;
  try {
    inst = factory();
  } catch (err) {
    throw new HostError('PH_ERR_LOAD_FACTORY_THREW', `${name}: newPlugin() threw: ${describeError(err)}`, { cause: err });
  }
  assertInstance(name, inst);
  return inst;
}

function readMetadata(name: string, inst: PluginInterface): PluginMetadata {
  let raw: unknown;
  try {
    raw = inst.getMetadata();
  } catch (err) {
    throw new HostError('PH_ERR_METADATA_INVALID', `${name}: getMetadata() threw: ${describeError(err)}`, { cause: err });
  }
  return validateMetadata(raw, name);
}

/**
 * The error answer of a plugin route: a 5xx (a handler that threw or
 * rejected, whatever it threw) names no internals and is logged with the
 * plugin's name; a 4xx (Fastify's validation, bad JSON, body too large, or one
 * the plugin raised on purpose) is described, with a stable `PH_ERR_*` code.
 */
function pluginErrorHandler(name: string) {
  return (
    thrown: unknown,
    request: { log: FastifyBaseLogger; url: string; method: string },
    reply: { code: (n: number) => { type: (t: string) => { send: (b: unknown) => void } } },
  ) => {
    const problem = pluginProblem(name, thrown);
    if (problem.status >= 500) {
      request.log.error(
        // request.log binds the plugin's name (and the request id) already
        { err: thrown, method: request.method, url: request.url },
        `plugin ${name} handler failed: ${describeError(thrown)}`,
      );
    }
    reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
  };
}

export interface LoadOptions {
  /**
   * Set by a runtime that cannot hand a connection upgrade to the plugin (a worker): the load is refused with
   * `PH_ERR_UPGRADE_UNSUPPORTED` naming the route, rather than the route answering a silent 404.
   */
  refuseUpgradesIn?: string;
}

/**
 * Loads one version: evaluate, factory, metadata, `initialize`, then a fresh
 * Fastify instance on which the plugin registers its routes. Any failure
 * cleans up what was started and throws a coded `HostError`; nothing of a
 * failed load stays reachable.
 */
export function loadPlugin(req: LoadRequest, opts: LoadOptions = {}): Promise<LoadedPlugin> {
  // everything plugin code starts while loading (its timers, promises, sockets) carries the plugin's scope
  return inPluginScope(req.name, () => loadInScope(req, opts));
}

async function loadInScope(req: LoadRequest, opts: LoadOptions): Promise<LoadedPlugin> {
  // what plugin code logs through: its lines cannot set the keys the host owns (`plugin`, `reqId`...)
  const { log, rawChild } = guardedPluginLogger(req.log);
  const abort = new AbortController();
  const timers = new PluginTimers((err) =>
    req.log.error({ err, plugin: req.name }, `plugin ${req.name} timer callback threw: ${describeError(err)}`),
  );
  // `config` is read through the box: `onConfigChange` swaps it while the context stays the same object
  const config: { current: JsonObject } = { current: deepFreeze(structuredClone(req.config)) };
  const ctx: PluginContext = Object.freeze({
    name: req.name,
    log,
    signal: abort.signal,
    sourceDir: req.sourceDir,
    get config() {
      return config.current;
    },
  });
  let inst: PluginInterface | undefined;
  let initialized = false;
  let server: FastifyInstance | undefined;
  try {
    const factory = factoryOf(req, timers);
    inst = instantiate(req.name, factory);
    const metadata = readMetadata(req.name, inst);
    const plugin = inst;
    await callHook(req.name, 'initialize', req.hookTimeoutMs, () => plugin.initialize(ctx), abort);
    initialized = true;

    const routes: RegisteredRoute[] = [];
    server = Fastify({
      ...requestLogging(log, rawChild),
      // longer than the hook limit, so a registerRoutes that never settles is reported by callHook as a timeout
      pluginTimeout: req.hookTimeoutMs * 2,
    });
    server.setErrorHandler(pluginErrorHandler(req.name) as never);
    server.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const schema = documentedSchema(req.name, log, plugin, route, metadata);
      // `@fastify/websocket` reads these two route options; its HEAD twin of a GET route carries them too
      const options = route as { websocket?: unknown; wsHandler?: unknown };
      const upgrade = options.websocket === true || typeof options.wsHandler === 'function';
      for (const m of methods) {
        const method = String(m).toUpperCase();
        routes.push({ method, url: route.url, schema, ...(upgrade && method === 'GET' ? { upgrade: true } : {}) });
      }
    });
    // Plugin routes live in a child context, so a plugin may set its own error handler, hooks and parsers.
    server.register(async (child) => {
      await plugin.registerRoutes(child, ctx);
    });
    const s = server;
    await callHook(req.name, 'registerRoutes', req.hookTimeoutMs, () => s.ready());
    const upgrading = opts.refuseUpgradesIn === undefined ? undefined : routes.find((r) => r.upgrade === true);
    if (upgrading !== undefined) {
      throw new HostError(
        'PH_ERR_UPGRADE_UNSUPPORTED',
        `${req.name}: route ${upgrading.method} ${upgrading.url} takes a connection upgrade (WebSocket), which the ${opts.refuseUpgradesIn} runtime cannot hand over; run the plugin inline (runtime: 'inline')`,
        { details: { method: upgrading.method, url: upgrading.url, runtime: opts.refuseUpgradesIn } },
      );
    }
    return new LoadedPlugin(req.name, req.hash, metadata, plugin, server, dedupeRoutes(routes), ctx, config, abort, timers);
  } catch (err) {
    abort.abort(new Error('load failed'));
    if (server !== undefined) {
      // bounded: a plugin still stuck in registerRoutes may keep Fastify's boot (and so its close) pending
      const closing = server.close().catch(() => {});
      await Promise.race([closing, new Promise((r) => setTimeout(r, req.hookTimeoutMs).unref())]);
    }
    if (inst !== undefined && initialized) {
      const plugin = inst;
      await callHook(req.name, 'cleanup', req.hookTimeoutMs, () => plugin.cleanup(ctx)).catch((e: unknown) =>
        log.warn({ err: e }, 'cleanup after failed load also failed'),
      );
    }
    timers.dispose();
    throw err;
  }
}

/**
 * How a plugin's Fastify instance logs its requests. When `info` lines are
 * written (the default level), Fastify's usual pair: "incoming request"
 * (method, URL) and "request completed" (`statusCode`, `responseTime`), each
 * bound to the plugin and a request id; the serializers and redaction of
 * `createLogger` keep headers out. Below that level there are no such lines to
 * write, so no logger instance at all: Fastify then adds no per-response
 * listener and no timestamps, and `request.log` is the plugin's logger itself
 * rather than a child per request.
 */
function requestLogging(log: FastifyBaseLogger, rawChild: ReturnType<typeof guardedPluginLogger>['rawChild']) {
  const levels = log as unknown as { isLevelEnabled?: (level: string) => boolean };
  if (typeof levels.isLevelEnabled === 'function' && !levels.isLevelEnabled('info')) {
    return { childLoggerFactory: () => log };
  }
  return {
    loggerInstance: log,
    genReqId: nextRequestId,
    // the request id is a host-owned key: bound with pino's own `child`, past the guard, which the child keeps
    childLoggerFactory: function (this: unknown, logger: FastifyBaseLogger, bindings: Record<string, unknown>) {
      return rawChild.call(logger as never, bindings);
    },
  } as const;
}

/**
 * The schema the OpenAPI document shows for a route: the plugin's `openapiTransform` applied where the
 * schema's objects live (zod's, in the plugin's own runtime), so what leaves is JSON Schema. A transform
 * that throws leaves the route's schema out (logged), never the load.
 */
function documentedSchema(
  name: string,
  log: FastifyBaseLogger,
  plugin: PluginInterface,
  route: { url: string; schema?: unknown },
  metadata: PluginMetadata,
): unknown {
  const transform = plugin.openapiTransform;
  if (typeof transform !== 'function' || route.schema === undefined) return route.schema;
  try {
    const out = transform.call(plugin, {
      schema: route.schema,
      url: route.url,
      route,
      openapiObject: { openapi: '3.1.0', info: { title: name, version: metadata.version } },
    });
    return out?.schema;
  } catch (err) {
    log.warn({ err, plugin: name, url: route.url }, `openapiTransform threw for ${route.url}; its schema is left out of the document`);
    return undefined;
  }
}

function dedupeRoutes(routes: RegisteredRoute[]): RegisteredRoute[] {
  const seen = new Set<string>();
  return routes.filter((r) => {
    const k = `${r.method} ${r.url}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
