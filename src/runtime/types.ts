import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { JsonObject } from '../config/plugins/index.js';
import type { HostError } from '../errors/index.js';
import type { HealthResult, PluginFactory, PluginMetadata } from '../sdk/index.js';

/** A route a plugin really registered on its Fastify instance. */
export interface RegisteredRoute {
  method: string;
  url: string;
  schema?: unknown;
  /** Set when the route takes a connection upgrade (`websocket: true` or a `wsHandler`, as `@fastify/websocket` reads them). */
  upgrade?: boolean;
}

/** The code of one version: a CommonJS bundle, or a factory compiled into the host (static plugins). */
export type PluginCode = { kind: 'bundle'; bundle: string; filename: string } | { kind: 'static'; factory: PluginFactory };

/** What a runtime needs to load (or trial-load) one version. */
export interface LoadRequest {
  name: string;
  hash: string;
  code: PluginCode;
  sourceDir: string | undefined;
  /** Child logger whose lines carry `plugin: <name>`. */
  log: FastifyBaseLogger;
  hookTimeoutMs: number;
  /**
   * What the version gets as `ctx.config`: validated against its schema,
   * defaults applied, secret references resolved on this node. Plain JSON, so
   * any runtime can carry it; `trial` ignores it.
   */
  config: JsonObject;
  /**
   * Set by a runtime that confines plugin code (worker, process): the modules
   * that reach outside it (`node:inspector`, `node:child_process`...) are refused
   * with `PH_ERR_LOAD_FORBIDDEN_MODULE`.
   */
  confined?: boolean;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * One loaded, initialized version of a plugin, as the route table, the
 * dispatcher, the metrics and the OpenAPI document see it. Nothing here says
 * how the version is evaluated: in the serving thread, in a worker, elsewhere.
 */
export interface LoadedVersion {
  readonly name: string;
  readonly hash: string;
  readonly version: string;
  readonly metadata: PluginMetadata;
  /** The routes the plugin registered: the route table is built from them. */
  readonly routes: readonly RegisteredRoute[];
  readonly loadedAt: Date;
  /** Which runtime evaluates this version (shown by the API; the host never branches on it). */
  readonly runtime: string;
  /** Logger whose lines carry `plugin: <name>`. */
  readonly log: FastifyBaseLogger;
  /** Requests dispatched to this version and not finished: the dispatcher adds, `release` removes. */
  inflight: number;
  /** Responses finished by this version, and how many had a 5xx status: the dispatcher counts them. */
  answered: number;
  serverErrors: number;
  /** Serves one request the dispatcher routed here. */
  readonly handle: RequestHandler;
  /**
   * Takes a connection upgrade (a WebSocket handshake) for one of its routes: true when the version took the
   * socket, false when it has nothing listening for upgrades (the request is then answered as a plain one).
   * Absent on a runtime that cannot hand a socket over (it refuses upgrade routes at load).
   */
  readonly upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** A request dispatched here has finished. */
  readonly release: () => void;
  /** Resolves true when no request is in flight, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Runs the plugin's `healthCheck` (time-limited), or answers ok when it has none. */
  health(timeoutMs: number): Promise<HealthResult>;
  /** Stops the version (abort, `cleanup` time-limited, close, clear timers). Never throws. */
  unload(timeoutMs: number): Promise<{ error?: HostError }>;
  /** Schemas added with `addSchema` that route schemas may refer to (for the OpenAPI document). */
  sharedSchemas(): unknown[];
  /** Set once the version can serve no more and will not recover by itself (a worker in a crash loop). */
  readonly failure?: HostError | undefined;
  /** Called once if the version fails for good (see `failure`). */
  onFailed?(listener: (err: HostError) => void): void;
  /** What the runtime knows of the version now (a worker's state, restarts, heap), shown by the API. */
  details?(): Record<string, unknown>;
  /**
   * Hands the version a new configuration in place: calls the plugin's
   * `onConfigChange(ctx, next, prev)` (time-limited), after which `ctx.config`
   * is `config`. Resolves false, calling nothing, when the plugin has no
   * `onConfigChange` (the manager then loads a new instance instead); throws
   * a coded `HostError` when it fails, the previous configuration kept.
   * A runtime without it always gets a new instance.
   */
  reconfigure?(config: JsonObject, timeoutMs: number): Promise<boolean>;
}

/**
 * The seam between the manager and the way plugin code runs. The manager is
 * handed a runtime and never knows how a version is evaluated.
 */
export interface PluginRuntime {
  readonly kind: string;
  /** Evaluate, `newPlugin()`, metadata, `initialize`, `registerRoutes`: a version ready to serve, or a coded `HostError`. */
  load(req: LoadRequest): Promise<LoadedVersion>;
  /** Evaluate, `newPlugin()`, metadata, and nothing else (no lifecycle hook runs): the proof made before a version is published. */
  trial(req: LoadRequest): Promise<PluginMetadata>;
  /** Releases what the runtime holds (threads, processes). */
  close(): Promise<void>;
}
