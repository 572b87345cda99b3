import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostError } from '../errors/index.js';
import { ISOLATION_MODES, type IsolationMode } from '../model/index.js';
import { type ControlPlaneConfig, controlPlaneConfig } from './control-plane.js';

export type { ControlPlaneConfig } from './control-plane.js';

import { DEFAULT_HOOK_TIMEOUT_MS } from './derived.js';
import { type TokenSettings, tokenSettings } from './token-settings.js';

export type { TokenSettings } from './token-settings.js';
export { tokenSettings } from './token-settings.js';

import { DEFAULT_PLUGIN_ENV_ALLOW, envAllowed, parseEnvAllowList } from './plugin-env.js';

/** Root of this package (a checkout, or its directory under `node_modules` when installed as a dependency). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * What relative paths resolve against. In a checkout: the project root, so the server behaves the same
 * started from any directory. Installed as a dependency (the root lies inside `node_modules`): the working
 * directory, since data and plugins belong to the user's project, never inside `node_modules`.
 */
export function pathBase(): string {
  return PROJECT_ROOT.split(path.sep).includes('node_modules') ? process.cwd() : PROJECT_ROOT;
}

export interface HostConfig extends ControlPlaneConfig, TokenSettings {
  /** Port of the data plane: plugin routes and the public reads. */
  port: number;
  host: string;
  /** Unset: embedded PGlite in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  pluginsDir: string;
  artifactsDir: string;
  logLevel: string;
  /** Bearer token for the admin API; unset disables it (403). */
  adminToken: string | undefined;
  /** `PGPASSWORD`, read before it is scrubbed from the environment (the driver would read it later otherwise). */
  databasePassword: string | undefined;
  watch: boolean;
  /** Quiet time after the last file event before a watched plugin is recompiled. */
  watchDebounceMs: number;
  /** Identifies this process in the observed-state table. */
  nodeId: string;
  /** Safety-net full reconcile period. */
  reconcileIntervalMs: number;
  /** Time limit for initialize/cleanup/health hooks. */
  hookTimeoutMs: number;
  /** Bound on waiting for in-flight requests of a replaced version. */
  drainTimeoutMs: number;
  /** Time a client has to send a whole request (headers and body); 0 disables it. */
  requestTimeoutMs: number;
  /** Time a client has to send the request line and headers. */
  headersTimeoutMs: number;
  /** Artifacts nothing refers to (no row, not served on a live node) are collected once older than this. */
  artifactRetentionMs: number;
  /** Rows of nodes whose heartbeat is older than this are collected (with their observed state). */
  nodeRetentionMs: number;
  /** Where a plugin whose row names no isolation mode runs. */
  pluginIsolation: IsolationMode;
  /** Worker plugins: deadline of one forwarded request (504 past it). */
  pluginRequestTimeoutMs: number;
  /** Worker plugins: a worker whose heartbeat stops this long is ended. */
  pluginStallTimeoutMs: number;
  /** Worker plugins: heap cap of each worker. */
  pluginMemoryMb: number;
  /** Worker plugins: this many deaths within `pluginCrashWindowMs` stop the restarts. */
  pluginCrashLimit: number;
  pluginCrashWindowMs: number;
  /** Process plugins, when the host runs as root: the user and group they run as (numbers or names; default nobody). */
  pluginUid: string | undefined;
  pluginGid: string | undefined;
  /** Least isolation of a plugin that arrived over the upload API or `push` (undefined: no minimum). */
  uploadIsolation: IsolationMode | undefined;
  /** Type-check plugins against the SDK before bundling. */
  typecheck: boolean;
  /** A type check (or start-up batch) running longer fails with PH_ERR_COMPILE_LIMIT; its worker is restarted. */
  typecheckTimeoutMs: number;
  /** Heap cap of the type-check worker; the check that exhausts it fails with PH_ERR_COMPILE_LIMIT. */
  typecheckMemoryMb: number;
  /** Skip discovery of plugins directory at start (a node that only follows the database). */
  discover: boolean;
  /** Versions kept per plugin in the history (plus any published, pinned, in a rollout or serving). */
  versionsKept: number;
  /** Bake period of a staged rollout: canary nodes watch the candidate this long. */
  rolloutBakeMs: number;
  /** How often a canary node runs the candidate's health check during the bake period. */
  rolloutCheckIntervalMs: number;
  /** A candidate whose 5xx ratio exceeds the previous version's by more than this many percentage points is aborted. */
  rollout5xxPercent: number;
  /** Answers a candidate must have given on a node before its 5xx ratio is judged. */
  rolloutMinRequests: number;
  /** `PUT /plugins/:name/source`: largest request body (the gzipped archive), in bytes. */
  uploadLimitBytes: number;
  /** Uploaded archives: most entries (files and directories) accepted. */
  uploadMaxEntries: number;
  /** Uploaded archives: largest unpacked size (the tar stream), in bytes; bounds a gzip bomb. */
  uploadMaxUnpackedBytes: number;
  /** Variables left in `process.env` once the host has read its environment (names, or prefixes ending in `*`). */
  pluginEnvAllow: string[];
  /** The only directory (symbolic links resolved) a `{"$file": ...}` secret reference may read from. */
  secretsDir: string;
  /** Plugins whose routes may overlap other plugins' routes (`*`: every plugin); by default none. */
  routeOverlapAllow: string[];
  /** Inline plugin code runs in its plugin's async scope, so escaped faults are attributed (costs CPU on Node 20). */
  pluginFaultScope: boolean;
}

/** Flags a CLI passes; each wins over its environment variable. */
export type ConfigOverrides = Partial<Record<keyof HostConfig, string | boolean | number | undefined>>;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function invalid(setting: string, message: string): never {
  throw new HostError('PH_ERR_CONFIG_INVALID', `${setting}: ${message}`, { details: { setting } });
}

function resolvePath(value: string, base: string): string {
  return path.isAbsolute(value) ? path.normalize(value) : path.resolve(base, value);
}

function parseInteger(setting: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) invalid(setting, `expected an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) invalid(setting, `expected ${min}..${max}, got ${n}`);
  return n;
}

function parseBool(raw: string | boolean | undefined): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === undefined) return false;
  return ['1', 'true', 'yes', 'on'].includes(raw.toLowerCase());
}

/** The default isolation mode and the limits of worker plugins. */
const MB = 1024 * 1024;

function uploads(pick: (key: keyof HostConfig, envName: string) => string | undefined): {
  uploadLimitBytes: number;
  uploadMaxEntries: number;
  uploadMaxUnpackedBytes: number;
} {
  return {
    uploadLimitBytes: MB * parseInteger('UPLOAD_LIMIT_MB', pick('uploadLimitBytes', 'UPLOAD_LIMIT_MB') ?? '10', 1, 1024),
    uploadMaxEntries: parseInteger('UPLOAD_MAX_ENTRIES', pick('uploadMaxEntries', 'UPLOAD_MAX_ENTRIES') ?? '10000', 1, 1_000_000),
    uploadMaxUnpackedBytes:
      MB * parseInteger('UPLOAD_MAX_UNPACKED_MB', pick('uploadMaxUnpackedBytes', 'UPLOAD_MAX_UNPACKED_MB') ?? '100', 1, 16_384),
  };
}

function isolation(pick: (key: keyof HostConfig, envName: string) => string | undefined): {
  pluginIsolation: IsolationMode;
  pluginRequestTimeoutMs: number;
  pluginStallTimeoutMs: number;
  pluginMemoryMb: number;
  pluginCrashLimit: number;
  pluginCrashWindowMs: number;
  pluginUid: string | undefined;
  pluginGid: string | undefined;
  uploadIsolation: IsolationMode | undefined;
} {
  const modeOf = (setting: string, v: string): IsolationMode => {
    if (!(ISOLATION_MODES as readonly string[]).includes(v)) invalid(setting, `expected inline, worker or process, got "${v}"`);
    return v as IsolationMode;
  };
  const mode = modeOf('PLUGIN_ISOLATION', pick('pluginIsolation', 'PLUGIN_ISOLATION') ?? 'inline');
  const upload = pick('uploadIsolation', 'UPLOAD_ISOLATION');
  const identity = (setting: string, v: string | undefined): string | undefined => {
    if (v !== undefined && !/^(\d+|[a-z_][a-z0-9_-]*\$?)$/i.test(v)) invalid(setting, `expected a number or a user name, got "${v}"`);
    return v;
  };
  return {
    pluginUid: identity('PLUGIN_UID', pick('pluginUid', 'PLUGIN_UID')),
    pluginGid: identity('PLUGIN_GID', pick('pluginGid', 'PLUGIN_GID')),
    uploadIsolation: upload === undefined || upload === '' ? undefined : modeOf('UPLOAD_ISOLATION', upload),
    pluginIsolation: mode,
    pluginRequestTimeoutMs: parseInteger(
      'PLUGIN_REQUEST_TIMEOUT_MS',
      pick('pluginRequestTimeoutMs', 'PLUGIN_REQUEST_TIMEOUT_MS') ?? '30000',
      1,
      3_600_000,
    ),
    pluginStallTimeoutMs: parseInteger(
      'PLUGIN_STALL_TIMEOUT_MS',
      pick('pluginStallTimeoutMs', 'PLUGIN_STALL_TIMEOUT_MS') ?? '5000',
      100,
      600_000,
    ),
    pluginMemoryMb: parseInteger('PLUGIN_MEMORY_MB', pick('pluginMemoryMb', 'PLUGIN_MEMORY_MB') ?? '256', 16, 65_536),
    pluginCrashLimit: parseInteger('PLUGIN_CRASH_LIMIT', pick('pluginCrashLimit', 'PLUGIN_CRASH_LIMIT') ?? '5', 1, 1000),
    pluginCrashWindowMs: parseInteger(
      'PLUGIN_CRASH_WINDOW_MS',
      pick('pluginCrashWindowMs', 'PLUGIN_CRASH_WINDOW_MS') ?? '60000',
      1000,
      86_400_000,
    ),
  };
}

/** Version history and staged rollouts. */
function releases(pick: (key: keyof HostConfig, envName: string) => string | undefined): {
  versionsKept: number;
  rolloutBakeMs: number;
  rolloutCheckIntervalMs: number;
  rollout5xxPercent: number;
  rolloutMinRequests: number;
} {
  return {
    versionsKept: parseInteger('VERSIONS_KEPT', pick('versionsKept', 'VERSIONS_KEPT') ?? '20', 1, 100_000),
    rolloutBakeMs: parseInteger('ROLLOUT_BAKE_MS', pick('rolloutBakeMs', 'ROLLOUT_BAKE_MS') ?? '60000', 0, 7 * 86_400_000),
    rolloutCheckIntervalMs: parseInteger(
      'ROLLOUT_CHECK_INTERVAL_MS',
      pick('rolloutCheckIntervalMs', 'ROLLOUT_CHECK_INTERVAL_MS') ?? '5000',
      50,
      3_600_000,
    ),
    rollout5xxPercent: parseInteger('ROLLOUT_5XX_PERCENT', pick('rollout5xxPercent', 'ROLLOUT_5XX_PERCENT') ?? '5', 0, 100),
    rolloutMinRequests: parseInteger('ROLLOUT_MIN_REQUESTS', pick('rolloutMinRequests', 'ROLLOUT_MIN_REQUESTS') ?? '20', 1, 1_000_000),
  };
}

/**
 * What plugin code may read of the process's environment and of the file system through secret references,
 * and which plugins may take URLs another plugin's routes answer.
 */
function pluginBoundaries(pick: (key: keyof HostConfig, envName: string) => string | undefined): {
  pluginEnvAllow: string[];
  secretsDir: string;
  routeOverlapAllow: string[];
  pluginFaultScope: boolean;
} {
  const allowText = pick('pluginEnvAllow', 'PLUGIN_ENV_ALLOW');
  let pluginEnvAllow = [...DEFAULT_PLUGIN_ENV_ALLOW];
  if (allowText !== undefined) {
    const { allow, invalid: bad } = parseEnvAllowList(allowText);
    if (bad.length > 0)
      invalid('PLUGIN_ENV_ALLOW', `expected variable names or prefixes ending in *, got ${bad.map((b) => `"${b}"`).join(', ')}`);
    pluginEnvAllow = allow;
  }
  const allowedSecret = pluginEnvAllow.find((a) => SECRET_SETTINGS.some((n) => envAllowed(n, [a]) || envAllowed(`${n}_FILE`, [a])));
  if (allowedSecret !== undefined) invalid('PLUGIN_ENV_ALLOW', `"${allowedSecret}" would leave a secret of the host to plugins`);
  const dir = pick('secretsDir', 'SECRETS_DIR') ?? '/run/secrets';
  if (!path.isAbsolute(dir)) invalid('SECRETS_DIR', `expected an absolute path, got "${dir}"`);
  const routeOverlapAllow = (pick('routeOverlapAllow', 'ROUTE_OVERLAP_ALLOW') ?? '').split(/[\s,]+/).filter((n) => n !== '');
  const pluginFaultScope = (pick('pluginFaultScope', 'PLUGIN_FAULT_SCOPE') ?? '1') !== '0';
  return { pluginEnvAllow, secretsDir: path.normalize(dir), routeOverlapAllow, pluginFaultScope };
}

/** Request and header deadlines: a client that sends slowly never holds a connection for long. */
function timeouts(pick: (key: keyof HostConfig, envName: string) => string | undefined): {
  requestTimeoutMs: number;
  headersTimeoutMs: number;
} {
  const requestTimeoutMs = parseInteger('REQUEST_TIMEOUT_MS', pick('requestTimeoutMs', 'REQUEST_TIMEOUT_MS') ?? '60000', 0, 3_600_000);
  const headersTimeoutMs = parseInteger('HEADERS_TIMEOUT_MS', pick('headersTimeoutMs', 'HEADERS_TIMEOUT_MS') ?? '10000', 1, 3_600_000);
  if (requestTimeoutMs > 0 && headersTimeoutMs > requestTimeoutMs) {
    invalid('HEADERS_TIMEOUT_MS', `must not exceed REQUEST_TIMEOUT_MS (${requestTimeoutMs}), got ${headersTimeoutMs}`);
  }
  return { requestTimeoutMs, headersTimeoutMs };
}

/**
 * Settings that are secrets: read once at start (each also from a file named by
 * `<NAME>_FILE`, the Docker-secrets convention), then removed from
 * `process.env` by `scrubSecrets` before any plugin code runs.
 */
export const SECRET_SETTINGS = ['ADMIN_TOKEN', 'DATABASE_URL', 'PGPASSWORD'] as const;

/** The value of a secret setting: the variable itself, else the trimmed content of the file `<NAME>_FILE` names. */
function secret(env: NodeJS.ProcessEnv, name: (typeof SECRET_SETTINGS)[number]): string | undefined {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return direct;
  const file = env[`${name}_FILE`];
  if (file === undefined || file === '') return undefined;
  try {
    const v = readFileSync(file, 'utf8').trim();
    return v === '' ? undefined : v;
  } catch (err) {
    return invalid(`${name}_FILE`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * Removes every secret setting (and its `_FILE` variant) from `env`: what
 * the host read stays in its configuration object, which it hands to no plugin.
 */
export function scrubSecrets(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of SECRET_SETTINGS) {
    delete env[name];
    delete env[`${name}_FILE`];
  }
}

/**
 * Reads configuration from the environment and CLI overrides. Relative paths
 * resolve against `pathBase()`. Throws `PH_ERR_CONFIG_INVALID` naming the setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): HostConfig {
  const pick = (key: keyof HostConfig, envName: string): string | undefined => {
    const o = overrides[key];
    if (o !== undefined && o !== false) return String(o);
    const v = env[envName];
    return v === undefined || v === '' ? undefined : v;
  };
  const overrideOf = (key: keyof HostConfig): string | undefined => {
    const o = overrides[key];
    return o !== undefined && o !== false ? String(o) : undefined;
  };

  const port = parseInteger('PORT', pick('port', 'PORT') ?? '3000', 0, 65535);
  const host = pick('host', 'HOST') ?? '127.0.0.1';
  const databaseUrl = overrideOf('databaseUrl') ?? secret(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    invalid('DATABASE_URL', 'expected a postgres:// or postgresql:// URL');
  }
  const base = pathBase();
  const dataDir = resolvePath(pick('dataDir', 'DATA_DIR') ?? 'data', base);
  const pluginsDir = resolvePath(pick('pluginsDir', 'PLUGINS_DIR') ?? 'plugins', base);
  if (!existsSync(pluginsDir) || !statSync(pluginsDir).isDirectory()) {
    invalid('PLUGINS_DIR', `directory does not exist: ${pluginsDir}`);
  }
  const artifactsDir = resolvePath(pick('artifactsDir', 'ARTIFACTS_DIR') ?? path.join(dataDir, 'artifacts'), base);
  const logLevel = pick('logLevel', 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) invalid('LOG_LEVEL', `expected one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`);
  const adminToken = overrideOf('adminToken') ?? secret(env, 'ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 8) invalid('ADMIN_TOKEN', 'must be at least 8 characters');

  return {
    port,
    host,
    databaseUrl,
    dataDir,
    pluginsDir,
    artifactsDir,
    logLevel,
    adminToken,
    databasePassword: secret(env, 'PGPASSWORD'),
    watch: parseBool(overrides.watch as string | boolean | undefined) || parseBool(env.WATCH),
    watchDebounceMs: parseInteger('WATCH_DEBOUNCE_MS', pick('watchDebounceMs', 'WATCH_DEBOUNCE_MS') ?? '200', 0, 60_000),
    nodeId: pick('nodeId', 'NODE_ID') ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    reconcileIntervalMs: parseInteger(
      'RECONCILE_INTERVAL_MS',
      pick('reconcileIntervalMs', 'RECONCILE_INTERVAL_MS') ?? '30000',
      100,
      86_400_000,
    ),
    hookTimeoutMs: parseInteger('HOOK_TIMEOUT_MS', pick('hookTimeoutMs', 'HOOK_TIMEOUT_MS') ?? String(DEFAULT_HOOK_TIMEOUT_MS), 1, 600_000),
    drainTimeoutMs: parseInteger('DRAIN_TIMEOUT_MS', pick('drainTimeoutMs', 'DRAIN_TIMEOUT_MS') ?? '10000', 0, 600_000),
    ...timeouts(pick),
    ...isolation(pick),
    ...uploads(pick),
    artifactRetentionMs: parseInteger(
      'ARTIFACT_RETENTION_MS',
      pick('artifactRetentionMs', 'ARTIFACT_RETENTION_MS') ?? String(7 * 86_400_000),
      0,
      3_650 * 86_400_000,
    ),
    nodeRetentionMs: parseInteger(
      'NODE_RETENTION_MS',
      pick('nodeRetentionMs', 'NODE_RETENTION_MS') ?? '3600000',
      60_000,
      3_650 * 86_400_000,
    ),
    typecheck: (pick('typecheck', 'TYPECHECK') ?? '1') !== '0',
    typecheckTimeoutMs: parseInteger('TYPECHECK_TIMEOUT_MS', pick('typecheckTimeoutMs', 'TYPECHECK_TIMEOUT_MS') ?? '60000', 1, 3_600_000),
    typecheckMemoryMb: parseInteger('TYPECHECK_MEMORY_MB', pick('typecheckMemoryMb', 'TYPECHECK_MEMORY_MB') ?? '2048', 64, 65_536),
    discover: (pick('discover', 'DISCOVER') ?? '1') !== '0',
    ...releases(pick),
    ...controlPlaneConfig(pick, port),
    ...tokenSettings(pick),
    ...pluginBoundaries(pick),
  };
}

export {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_HOOK_TIMEOUT_MS,
  type DerivedSettings,
  deriveSettings,
  JANITOR_INTERVAL_MS,
  liveWithinMs,
} from './derived.js';
