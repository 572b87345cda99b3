/**
 * The plugin SDK: the one module plugin authors import.
 *
 * ```ts
 * import { definePlugin } from 'plugin-host/sdk';
 *
 * export const newPlugin = definePlugin(() => ({
 *   getMetadata: () => ({ name: 'hello', version: '1.0.0', description: 'Says hello', author: 'me' }),
 *   async initialize(ctx) { ctx.log.info('ready'); },
 *   registerRoutes(server) { server.get('/hi', async () => ({ hi: true })); },
 *   async cleanup() {},
 * }));
 * ```
 *
 * At run time the host provides this module and `fastify` to the plugin bundle,
 * so a plugin never ships its own copy of either.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

/** Version of the plugin contract. Artifacts built against another major are rebuilt, never loaded. */
export const SDK_VERSION = '1.0.0';

/** HTTP methods a plugin may declare in its metadata. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

/** An endpoint the plugin declares; the host also records the routes the plugin really registered. */
export interface PluginEndpoint {
  method: HttpMethod;
  path: string;
  /** Name of the handler, informational (shown by `GET /plugins`). */
  handler?: string;
  /** Endpoint kind; `REST` by default. */
  type?: string;
}

/** What a plugin says about itself. `name` must equal its directory name; `version` must be semver. */
export interface PluginMetadata {
  name: string;
  version: string;
  description: string;
  author: string;
  endpoints?: PluginEndpoint[];
}

/** Passed to `initialize`, `cleanup` and `healthCheck`. */
export interface PluginContext {
  /** The plugin's name. */
  readonly name: string;
  /** A pino child logger whose lines carry `plugin: <name>`. */
  readonly log: FastifyBaseLogger;
  /**
   * Aborted when the host gives up on the current hook (time limit) or unloads
   * the plugin: long work started by the plugin should stop when it fires.
   */
  readonly signal: AbortSignal;
  /** Absolute path of the plugin's source directory, when this node has it. */
  readonly sourceDir: string | undefined;
}

/** The Fastify instance a plugin registers its routes on: a real instance, owned by this plugin version. */
export type PluginServer = FastifyInstance;

/** Result of an optional health check. */
export interface HealthResult {
  ok: boolean;
  /** Free-form detail shown by `GET /plugins/:name/health`. */
  detail?: unknown;
}

/** The contract every plugin instance fulfils. */
export interface PluginInterface {
  /** Called once before routes are registered. Time-limited. */
  initialize(ctx: PluginContext): void | Promise<void>;
  /** Read after `initialize`; validated by the host. */
  getMetadata(): PluginMetadata;
  /** Register routes on the plugin's own Fastify instance. */
  registerRoutes(server: PluginServer): void | Promise<void>;
  /** Called once when this version stops serving, after in-flight requests drained. Time-limited. */
  cleanup(ctx: PluginContext): void | Promise<void>;
  /** Optional health probe, run by `GET /plugins/:name/health`. Time-limited. */
  healthCheck?(ctx: PluginContext): HealthResult | boolean | Promise<HealthResult | boolean>;
}

/** The factory a plugin's entry file exports as `newPlugin`. */
export type PluginFactory = () => PluginInterface;

/**
 * Identity helper that gives a factory its types, so editors and the host's
 * type check catch a wrong signature where it is written.
 */
export function definePlugin(factory: PluginFactory): PluginFactory {
  return factory;
}
