/**
 * The one registry of errors this host raises. Every error carries a stable
 * `code` (matched by callers and tests), an HTTP `status` (used when it reaches
 * the API) and a message template. Foreign errors (esbuild, TypeScript, pg, the
 * file system, plugin code) are wrapped where they enter, keeping `cause`.
 */
import { redact } from '../secrets/redact.js';

export interface ErrorSpec {
  readonly status: number;
  readonly title: string;
}

export const ERROR_CODES = {
  PH_ERR_CONFIG_INVALID: { status: 500, title: 'Invalid configuration' },
  PH_ERR_PLUGIN_CONFIG_INVALID: { status: 400, title: 'Invalid plugin configuration' },
  PH_ERR_PLUGIN_CONFIG_SECRET: { status: 422, title: 'Plugin configuration secret not available' },
  PH_ERR_PLUGIN_CONFIG_CONFLICT: { status: 412, title: 'Plugin configuration changed meanwhile' },
  PH_ERR_DB_UNAVAILABLE: { status: 503, title: 'Database unavailable' },
  PH_ERR_MIGRATION_FAILED: { status: 500, title: 'Migration failed' },
  PH_ERR_PLUGIN_NOT_FOUND: { status: 404, title: 'Plugin not found' },
  PH_ERR_PLUGIN_NAME_INVALID: { status: 400, title: 'Invalid plugin name' },
  PH_ERR_PLUGIN_EXISTS: { status: 409, title: 'Plugin already registered' },
  PH_ERR_PLUGIN_PATH_OUTSIDE: { status: 400, title: 'Path outside the plugins directory' },
  PH_ERR_PLUGIN_NO_ENTRY: { status: 422, title: 'Plugin has no entry file' },
  PH_ERR_PLUGIN_SOURCE_MISSING: { status: 422, title: 'Plugin source not available' },
  PH_ERR_COMPILE_SYNTAX: { status: 422, title: 'Plugin does not compile' },
  PH_ERR_COMPILE_TYPE: { status: 422, title: 'Plugin does not type-check' },
  PH_ERR_COMPILE_RESOLVE: { status: 422, title: 'Plugin imports a module that cannot be resolved' },
  PH_ERR_COMPILE_LIMIT: { status: 422, title: 'Plugin type check exceeded its time or memory limit' },
  PH_ERR_COMPILE_OUTSIDE: { status: 422, title: "Plugin source reaches outside the plugin's directory" },
  PH_ERR_ARTIFACT_MISSING: { status: 422, title: 'Plugin artifact not found' },
  PH_ERR_ARTIFACT_INCOMPATIBLE: { status: 422, title: 'Plugin artifact built by an incompatible host' },
  PH_ERR_ARTIFACT_INTEGRITY: { status: 422, title: 'Plugin artifact failed its integrity check' },
  PH_ERR_LOAD_EVALUATE: { status: 422, title: 'Plugin module threw while evaluating' },
  PH_ERR_LOAD_NO_FACTORY: { status: 422, title: 'Plugin does not export newPlugin()' },
  PH_ERR_LOAD_FACTORY_THREW: { status: 422, title: 'Plugin factory threw' },
  PH_ERR_LOAD_BAD_INSTANCE: { status: 422, title: 'Plugin factory returned an invalid instance' },
  PH_ERR_LOAD_FORBIDDEN_MODULE: { status: 422, title: 'Plugin loads a module its runtime refuses' },
  PH_ERR_METADATA_INVALID: { status: 422, title: 'Plugin metadata is invalid' },
  PH_ERR_HOOK_FAILED: { status: 422, title: 'Plugin lifecycle hook failed' },
  PH_ERR_HOOK_TIMEOUT: { status: 422, title: 'Plugin lifecycle hook timed out' },
  PH_ERR_ROUTE_CONFLICT: { status: 409, title: 'Route conflict' },
  PH_ERR_ROUTE_RESERVED: { status: 409, title: 'Route shadows a core route' },
  PH_ERR_ROUTE_OVERLAP: { status: 409, title: "Route overlaps another plugin's route" },
  PH_ERR_ILLEGAL_TRANSITION: { status: 500, title: 'Illegal plugin state transition' },
  PH_ERR_DESIRED_STATE_INVALID: { status: 422, title: 'Desired state in the database is invalid' },
  PH_ERR_ADMIN_DISABLED: { status: 403, title: 'Admin API disabled' },
  PH_ERR_UNAUTHORIZED: { status: 401, title: 'Missing or invalid admin token' },
  PH_ERR_BAD_REQUEST: { status: 400, title: 'Bad request' },
  PH_ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  PH_ERR_NOT_FOUND: { status: 404, title: 'Not found' },
  PH_ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  PH_ERR_URL_TOO_LONG: { status: 414, title: 'URI too long' },
  PH_ERR_NOT_ACCEPTABLE: { status: 406, title: 'Not acceptable' },
  PH_ERR_TOO_MANY_REQUESTS: { status: 429, title: 'Too many requests' },
  PH_ERR_CLIENT_ERROR: { status: 400, title: 'Client error' },
  PH_ERR_INTERNAL: { status: 500, title: 'Internal server error' },
  PH_ERR_NOT_READY: { status: 503, title: 'Not ready' },
  PH_ERR_EVENTS_LIMIT: { status: 503, title: 'Too many event streams' },
  PH_ERR_HEALTH_FAILED: { status: 503, title: 'Plugin health check failed' },
  PH_ERR_PLUGIN_NOT_SERVING: { status: 409, title: 'Plugin is not serving on this node' },
  PH_ERR_INVALID_JSON: { status: 400, title: 'Malformed JSON body' },
  PH_ERR_VALIDATION: { status: 400, title: 'Request does not match the schema' },
  PH_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  PH_ERR_MALFORMED_REQUEST: { status: 400, title: 'Malformed HTTP request' },
  PH_ERR_HEADERS_TOO_LARGE: { status: 431, title: 'Request line or headers too large' },
  PH_ERR_REQUEST_TIMEOUT: { status: 408, title: 'Request timeout' },
  PH_ERR_PLUGIN_HANDLER: { status: 500, title: 'Plugin route handler failed' },
  PH_ERR_PLUGIN_TIMEOUT: { status: 504, title: 'Plugin did not answer in time' },
  PH_ERR_PLUGIN_UNAVAILABLE: { status: 503, title: 'Plugin worker unavailable' },
  PH_ERR_PLUGIN_CRASHED: { status: 503, title: 'Plugin worker crashed' },
  PH_ERR_PLUGIN_BAD_ANSWER: { status: 502, title: 'Plugin gave an answer that cannot be sent' },
  PH_ERR_VERSION_NOT_FOUND: { status: 404, title: 'Plugin version not found' },
  PH_ERR_ROLLOUT_CONFLICT: { status: 409, title: 'Another rollout or pin change holds the plugin' },
  PH_ERR_ROLLOUT_NOT_FOUND: { status: 409, title: 'No rollout in progress' },
  PH_ERR_ROLLOUT_INVALID: { status: 422, title: 'Rollout cannot start' },
  PH_ERR_USAGE: { status: 400, title: 'Invalid command-line usage' },
  PH_ERR_SERVER_UNREACHABLE: { status: 503, title: 'Running server not reachable' },
  PH_ERR_UPLOAD_NOT_GZIP: { status: 400, title: 'Upload is not a gzip stream' },
  PH_ERR_UPLOAD_BAD_ARCHIVE: { status: 400, title: 'Upload is not a valid tar archive' },
  PH_ERR_UPLOAD_UNSAFE_PATH: { status: 400, title: 'Archive entry path leaves the unpack directory' },
  PH_ERR_UPLOAD_LINK: { status: 400, title: 'Archive contains a link' },
  PH_ERR_UPLOAD_SPECIAL_FILE: { status: 400, title: 'Archive contains a device file or FIFO' },
  PH_ERR_UPLOAD_TOO_MANY_ENTRIES: { status: 413, title: 'Archive has too many entries' },
  PH_ERR_UPLOAD_TOO_LARGE: { status: 413, title: 'Archive unpacks to too many bytes' },
  PH_ERR_TOKEN_INVALID: { status: 401, title: 'Token not valid' },
  PH_ERR_TOKEN_EXPIRED: { status: 401, title: 'Token expired' },
  PH_ERR_TOKEN_REVOKED: { status: 401, title: 'Token revoked' },
  PH_ERR_FORBIDDEN_SCOPE: { status: 403, title: 'Token lacks the scope this call needs' },
  PH_ERR_SCOPE_INVALID: { status: 400, title: 'Invalid token scope' },
  PH_ERR_TOKEN_NOT_FOUND: { status: 404, title: 'Token not found' },
  PH_ERR_UPGRADE_UNSUPPORTED: { status: 422, title: 'Route takes an upgrade its runtime cannot serve' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A host error: stable code, HTTP status, human message, optional cause and details. */
export class HostError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HostError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = options?.details;
  }

  get title(): string {
    return ERROR_CODES[this.code].title;
  }
}

export function isHostError(err: unknown, code?: ErrorCode): err is HostError {
  return err instanceof HostError && (code === undefined || err.code === code);
}

/**
 * Turns anything thrown (plugin code may throw strings) into a readable message, with resolved
 * plugin secrets redacted: what plugin code throws becomes part of host errors, answers and logs.
 */
export function describeError(err: unknown): string {
  if (err instanceof Error) return redact(err.message);
  if (typeof err === 'string') return redact(err);
  try {
    return redact(JSON.stringify(err));
  } catch {
    return redact(String(err));
  }
}

/** Serializable form recorded in observed state and shown by the API. */
export interface RecordedError {
  code: string;
  message: string;
  at: string;
}

/** Recorded messages are shown by the API and stored in the database: resolved plugin secrets are redacted. */
export function recordError(err: unknown, at: Date = new Date()): RecordedError {
  if (err instanceof HostError) return { code: err.code, message: redact(err.message), at: at.toISOString() };
  return { code: 'PH_ERR_INTERNAL', message: redact(describeError(err)), at: at.toISOString() };
}
