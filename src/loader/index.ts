import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { describeError, ERROR_CODES, type ErrorCode, HostError } from '../errors/index.js';
import type { HealthResult, PluginContext, PluginFactory, PluginInterface, PluginMetadata } from '../sdk/index.js';
import { notePluginCode } from './attribution.js';
import { evaluateBundle, PluginTimers } from './evaluate.js';
import { callHook } from './hooks.js';
import { validateMetadata } from './metadata.js';

export { attributeError } from './attribution.js';
export { callHook } from './hooks.js';
export { assertPluginName, isValidPluginName, PLUGIN_NAME_PATTERN, validateMetadata } from './metadata.js';

/** A route a plugin really registered on its Fastify instance. */
export interface RegisteredRoute {
  method: string;
  url: string;
  schema?: unknown;
}

/** What the loader needs to load one version. */
export interface LoadRequest {
  name: string;
  hash: string;
  /** CommonJS bundle, or a factory for static plugins compiled into the host. */
  code: { kind: 'bundle'; bundle: string; filename: string } | { kind: 'static'; factory: PluginFactory };
  sourceDir: string | undefined;
  log: FastifyBaseLogger;
  hookTimeoutMs: number;
}

/** One loaded, initialized version of a plugin with its own Fastify instance. */
export class LoadedPlugin {
  /** Requests dispatched to this version and not finished yet. */
  inflight = 0;
  private drainWaiters: Array<() => void> = [];
  readonly loadedAt = new Date();

  constructor(
    readonly name: string,
    readonly hash: string,
    readonly metadata: PluginMetadata,
    readonly instance: PluginInterface,
    readonly server: FastifyInstance,
    readonly routes: readonly RegisteredRoute[],
    readonly ctx: PluginContext,
    private readonly abort: AbortController,
    private readonly timers: PluginTimers,
  ) {}

  get version(): string {
    return this.metadata.version;
  }

  /** Called by the dispatcher when a request it sent here has finished; bound once, reused per request. */
  readonly release = (): void => {
    this.inflight--;
    if (this.inflight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  };

  /** Resolves when no request is in flight, or after `timeoutMs`. Returns true if drained. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      t.unref();
      this.drainWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Runs `healthCheck` if the plugin has one. */
  async health(timeoutMs: number): Promise<HealthResult> {
    const hc = this.instance.healthCheck;
    if (typeof hc !== 'function') return { ok: true, detail: 'no healthCheck defined' };
    const r = await callHook(this.name, 'healthCheck', timeoutMs, () => hc.call(this.instance, this.ctx));
    if (typeof r === 'boolean') return { ok: r };
    if (r === null || typeof r !== 'object' || typeof (r as HealthResult).ok !== 'boolean') {
      return { ok: false, detail: 'healthCheck returned neither a boolean nor { ok }' };
    }
    return r;
  }

  /**
   * Stops this version: aborts its signal, runs `cleanup` (time-limited; a throw
   * or hang is logged and unload completes anyway), closes its Fastify instance
   * and clears its timers. Never throws.
   */
  async unload(timeoutMs: number): Promise<{ error?: HostError }> {
    let error: HostError | undefined;
    this.abort.abort(new Error('plugin unloading'));
    try {
      await callHook(this.name, 'cleanup', timeoutMs, () => this.instance.cleanup(this.ctx));
    } catch (err) {
      error = err as HostError;
      this.ctx.log.error({ err, code: error.code }, `cleanup failed: ${error.message}`);
    }
    await Promise.race([this.server.close(), new Promise((r) => setTimeout(r, timeoutMs).unref())]).catch(() => {});
    this.timers.dispose();
    return error === undefined ? {} : { error };
  }
}

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
  notePluginCode(req.code.filename, req.name);
  const exports = evaluateBundle(req.name, req.code.bundle, req.code.filename, timers);
  const factory = exports.newPlugin ?? (exports.default as Record<string, unknown> | undefined)?.newPlugin;
  if (typeof factory !== 'function') {
    throw new HostError('PH_ERR_LOAD_NO_FACTORY', `${req.name}: entry file does not export a newPlugin() function`);
  }
  return factory as PluginFactory;
}

/** Evaluate + factory + metadata, without running any lifecycle hook: the check made before registering. */
export function trialLoad(req: LoadRequest): PluginMetadata {
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

/** Stable code for a 4xx error raised by Fastify or by the plugin on purpose. */
function clientErrorCode(status: number, fastifyCode: string | undefined, validation: boolean): ErrorCode {
  if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) return 'PH_ERR_PAYLOAD_TOO_LARGE';
  if (fastifyCode === 'FST_ERR_CTP_INVALID_JSON_BODY' || fastifyCode === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'PH_ERR_INVALID_JSON';
  if (fastifyCode === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) return 'PH_ERR_UNSUPPORTED_MEDIA_TYPE';
  if (validation || fastifyCode === 'FST_ERR_VALIDATION') return 'PH_ERR_VALIDATION';
  if (status === 404) return 'PH_ERR_NOT_FOUND';
  if (status === 405) return 'PH_ERR_METHOD_NOT_ALLOWED';
  if (status === 414) return 'PH_ERR_URL_TOO_LONG';
  return 'PH_ERR_BAD_REQUEST';
}

/**
 * The error body a plugin route answers with: a 5xx (a handler that threw or
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
    const err = (thrown !== null && typeof thrown === 'object' ? thrown : {}) as {
      statusCode?: unknown;
      validation?: unknown;
      code?: unknown;
      message?: unknown;
    };
    const sc = err.statusCode;
    const status = typeof sc === 'number' && Number.isInteger(sc) && sc >= 400 && sc < 600 ? sc : 500;
    if (status >= 500) {
      request.log.error(
        { err: thrown, plugin: name, method: request.method, url: request.url },
        `plugin ${name} handler failed: ${describeError(thrown)}`,
      );
      reply
        .code(status)
        .type('application/problem+json')
        .send({
          type: 'about:blank',
          title: ERROR_CODES.PH_ERR_PLUGIN_HANDLER.title,
          status,
          detail: `plugin ${name} failed to handle the request`,
          code: 'PH_ERR_PLUGIN_HANDLER',
        });
      return;
    }
    const original = typeof err.code === 'string' ? err.code : undefined;
    const code = clientErrorCode(status, original, err.validation !== undefined);
    reply
      .code(status)
      .type('application/problem+json')
      .send({
        type: 'about:blank',
        title: ERROR_CODES[code].title,
        status,
        detail: typeof err.message === 'string' ? err.message : ERROR_CODES[code].title,
        code,
        ...(original === undefined ? {} : original.startsWith('FST_') ? { fastify_code: original } : { plugin_code: original }),
      });
  };
}

/**
 * Loads one version: evaluate, factory, metadata, `initialize`, then a fresh
 * Fastify instance on which the plugin registers its routes. Any failure
 * cleans up what was started and throws a coded `HostError`; nothing of a
 * failed load stays reachable.
 */
export async function loadPlugin(req: LoadRequest): Promise<LoadedPlugin> {
  const log = req.log;
  const abort = new AbortController();
  const timers = new PluginTimers((err) =>
    log.error({ err, plugin: req.name }, `plugin ${req.name} timer callback threw: ${describeError(err)}`),
  );
  const ctx: PluginContext = Object.freeze({ name: req.name, log, signal: abort.signal, sourceDir: req.sourceDir });
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
      loggerInstance: log,
      logController: new LogController({ disableRequestLogging: true }),
      // longer than the hook limit, so a registerRoutes that never settles is reported by callHook as a timeout
      pluginTimeout: req.hookTimeoutMs * 2,
      // the host already parsed and bounded the URL; keep plugin routing identical to a plain app
    });
    server.setErrorHandler(pluginErrorHandler(req.name) as never);
    server.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods) routes.push({ method: String(m).toUpperCase(), url: route.url, schema: route.schema });
    });
    // Plugin routes live in a child context, so a plugin may set its own error handler, hooks and parsers.
    server.register(async (child) => {
      await plugin.registerRoutes(child);
    });
    const s = server;
    await callHook(req.name, 'registerRoutes', req.hookTimeoutMs, () => s.ready());
    return new LoadedPlugin(req.name, req.hash, metadata, plugin, server, dedupeRoutes(routes), ctx, abort, timers);
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

function dedupeRoutes(routes: RegisteredRoute[]): RegisteredRoute[] {
  const seen = new Set<string>();
  return routes.filter((r) => {
    const k = `${r.method} ${r.url}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
