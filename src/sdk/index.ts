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
import type { ConfigOf, JsonSchema, PluginConfig } from './config-schema.js';

export type { ConfigOf, FromSchema, JsonSchema, JsonTypeName, NoConfig, PluginConfig } from './config-schema.js';

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
  /**
   * JSON Schema (draft-07, or draft 2020-12 with its `$schema`) of the plugin's
   * configuration object. The host validates what operators store against it,
   * applies its `default`s and passes the result as `ctx.config`. Without it
   * the plugin's configuration is `{}` and nothing else is accepted.
   */
  configSchema?: JsonSchema;
}

/** Passed to `initialize`, `registerRoutes`, `cleanup`, `healthCheck` and `onConfigChange`. */
export interface PluginContext<Config extends object = PluginConfig> {
  /** The plugin's name. */
  readonly name: string;
  /**
   * The configuration, validated against `configSchema`, defaults applied,
   * secret references resolved on this node; frozen. Read it when needed (in
   * a handler, not once at start): after `onConfigChange` it is the new one.
   */
  readonly config: Readonly<Config>;
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

/**
 * What an OpenAPI schema transform is given for one route: the shape `@fastify/swagger`'s `transform`
 * receives. Every field is optional in the type so that transforms written for `@fastify/swagger`
 * (`jsonSchemaTransform` from `fastify-type-provider-zod`) are accepted as they are; the host always passes all.
 */
export interface OpenApiTransformInput {
  /** The route's schema as the plugin registered it (zod objects included). */
  schema?: unknown;
  url?: string;
  /** The route's options as Fastify recorded them. */
  route?: unknown;
  /** The document being built (`openapi` and `info`): zod's transform reads the OpenAPI version from it. */
  openapiObject?: { openapi?: string; info?: { title?: string; version?: string } };
}

/** The contract every plugin instance fulfils; `Config` is the type of `ctx.config`. */
export interface PluginInterface<Config extends object = PluginConfig, Schema extends JsonSchema = JsonSchema> {
  /** Called once before routes are registered. Time-limited. */
  initialize(ctx: PluginContext<Config>): void | Promise<void>;
  /** Read before `initialize`; validated by the host. */
  getMetadata(): PluginMetadata & { configSchema?: Schema };
  /** Register routes on the plugin's own Fastify instance. */
  registerRoutes(server: PluginServer, ctx: PluginContext<Config>): void | Promise<void>;
  /** Called once when this version stops serving, after in-flight requests drained. Time-limited. */
  cleanup(ctx: PluginContext<Config>): void | Promise<void>;
  /** Optional health probe, run by `GET /plugins/:name/health`. Time-limited. */
  healthCheck?(ctx: PluginContext<Config>): HealthResult | boolean | Promise<HealthResult | boolean>;
  /**
   * Optional: the configuration changed while this version serves. With it
   * the host calls this (time-limited) instead of loading a new instance;
   * `ctx.config` is `prev` until it resolves and `next` after. A throw keeps
   * `prev` in place and is recorded. Without it, a configuration change
   * loads a new instance beside this one (blue/green).
   */
  onConfigChange?(ctx: PluginContext<Config>, next: Readonly<Config>, prev: Readonly<Config>): void | Promise<void>;
  /**
   * Optional: how this plugin's route schemas read as JSON Schema in the host's OpenAPI document, for schemas
   * written with something else (zod: `openapiTransform: jsonSchemaTransform`). Run where the routes are
   * collected, once per route and version; a throw leaves that route's schema out of the document.
   */
  openapiTransform?(input: OpenApiTransformInput): { schema?: unknown; url?: string };
}

/** The factory a plugin's entry file exports as `newPlugin`. */
export type PluginFactory = () => PluginInterface;

/**
 * Identity helper that gives a factory its types, so editors and the host's
 * type check catch a wrong signature where it is written. `ctx.config` is
 * typed from the `configSchema` literal in `getMetadata()`, or from the type
 * argument: `definePlugin<{ greeting: string }>(() => ({ ... }))`.
 */
export function definePlugin<Config extends object = never>(
  factory: [Config] extends [never] ? never : () => PluginInterface<Config>,
): PluginFactory;
export function definePlugin<const Schema extends JsonSchema = never>(
  factory: () => PluginInterface<ConfigOf<Schema>, Schema>,
): PluginFactory;
export function definePlugin(factory: () => PluginInterface<never>): PluginFactory {
  return factory as unknown as PluginFactory;
}
