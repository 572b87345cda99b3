// What the console reads and writes: the host's own read API (`GET /plugins`, `GET /cluster`,
// `GET /plugins/:name`, `GET /plugins/:name/errors`) and its admin API. Nothing else.

export interface RecordedError {
  code: string | null;
  message: string;
  at: string | null;
  version?: string | null;
}

export interface Endpoint {
  method: string;
  path: string;
}

/** One entry of `GET /plugins`: a registered plugin, or a directory that could not be registered (`registered: false`). */
export interface PluginItem {
  name: string;
  registered: boolean;
  status: string | null;
  state: string;
  version?: string;
  description?: string;
  author?: string;
  type?: string;
  generation?: number;
  artifact_hash?: string | null;
  source_path?: string | null;
  serving?: { version: string; hash: string; loaded_at: string; from?: string; isolation?: string; config_revision?: number } | null;
  last_error: RecordedError | null;
  endpoints: Endpoint[];
  updated_at?: string;
  stale?: boolean;
  /** Fields later versions of the API add (isolation, configuration, rollout) are read by name. */
  [field: string]: unknown;
}

export interface NodePluginState {
  node_id: string;
  state: string;
  serving_version: string | null;
  serving_hash: string | null;
  failed_version: string | null;
  last_error: RecordedError | null;
  updated_at: string | null;
}

export interface ClusterNode {
  node_id: string;
  address: string;
  heartbeat_at: string | null;
  self: boolean;
}

export interface ClusterView {
  node_id: string;
  stale: boolean;
  nodes: ClusterNode[];
  plugins: Record<string, NodePluginState[]>;
}

export interface PluginDetail extends PluginItem {
  nodes?: (NodePluginState & { address: string; heartbeat_at: string })[];
  health?: { ok: boolean; detail: unknown; version: string; checked_at: string; code?: string } | null;
}

export interface HistoryEntry {
  code: string;
  message: string;
  at: string;
  last_at: string;
  version: string | null;
  count: number;
}

/** An answer that was not 2xx, with the problem document's message when there is one. */
export class RequestFailed extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The fields a refused configuration names (`details.errors`). */
    readonly errors: { pointer: string; message: string }[] = [],
    /** The problem's own words (its `detail`), for a notice that shows them alone. */
    readonly detail = message,
  ) {
    super(message);
  }
}

interface Problem {
  title?: string;
  detail?: string;
  code?: string;
  details?: { errors?: { pointer: string; message: string }[] };
}

async function failure(res: Response): Promise<RequestFailed> {
  let p: Problem | undefined;
  try {
    p = (await res.json()) as Problem;
  } catch {
    p = undefined;
  }
  const what = p?.detail ?? p?.title ?? res.statusText;
  const errors = Array.isArray(p?.details?.errors) ? p.details.errors : [];
  return new RequestFailed(
    res.status,
    `${res.status} ${p?.title ?? res.statusText}${p?.code ? ` (${p.code})` : ''}: ${what}`,
    errors,
    what,
  );
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export type Action = 'enable' | 'disable' | 'reload';

export interface ActionResult extends PluginItem {
  action: string;
  changed: boolean;
  settled: boolean;
}

/** Calls the admin API with the token as a bearer token; a refusal (401, 403, 422, …) is thrown with its message. */
export async function runAction(name: string, action: Action, token: string): Promise<ActionResult> {
  return postAdmin(name, action, token);
}

/** `POST /plugins/:name/<path>` with the token (and a JSON body when given); a refusal is thrown with its message. */
export async function postAdmin(name: string, path: string, token: string, body?: unknown): Promise<ActionResult> {
  const res = await fetch(`/plugins/${encodeURIComponent(name)}/${path}`, {
    method: 'POST',
    headers: adminHeaders(token, body !== undefined),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    cache: 'no-store',
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as ActionResult;
}

/** One entry of `GET /plugins/:name/versions` (newest first). */
export interface VersionEntry {
  version: string;
  hash: string;
  sha256: string;
  created_at: string;
  published_by: string;
  action: string;
  /** Live nodes serving this version now. */
  nodes: string[];
}

/** The `rollout` field of a plugin (absent or null: none was ever started). */
export interface RolloutInfo {
  candidate_version?: string;
  candidate_hash?: string;
  previous_version?: string | null;
  state?: string;
  nodes?: string[] | null;
  percent?: number | null;
  reason?: string | null;
}

/** `GET /plugins/:name/config`: stored values (secret references as written), schema, revision. */
export interface ConfigState {
  name: string;
  config: unknown;
  effective: unknown;
  errors: { pointer: string; message: string }[];
  schema: unknown;
  schema_error: { code: string; message: string } | null;
  revision: number;
  updated_at: string | null;
  updated_by: string;
}

export interface ConfigChange extends ConfigState {
  changed: boolean;
  settled: boolean;
  plugin?: { state: string; last_error: RecordedError | null };
}

function adminHeaders(token: string, json: boolean): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== '') headers.authorization = `Bearer ${token}`;
  if (json) headers['content-type'] = 'application/json';
  return headers;
}

export async function getConfig(name: string, token: string): Promise<ConfigState> {
  const res = await fetch(`/plugins/${encodeURIComponent(name)}/config`, { headers: adminHeaders(token, false), cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as ConfigState;
}

/** Replaces the whole configuration if `revision` is still the stored one (a change made meanwhile is refused, 412). */
export async function putConfig(name: string, config: unknown, revision: number, token: string): Promise<ConfigChange> {
  const res = await fetch(`/plugins/${encodeURIComponent(name)}/config`, {
    method: 'PUT',
    headers: { ...adminHeaders(token, true), 'if-match': `"${revision}"` },
    body: JSON.stringify(config),
    cache: 'no-store',
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as ConfigChange;
}

/** The host's plugin-name rule: anything else is never sent as a path segment. */
export const PLUGIN_NAME = /^[a-z0-9][a-z0-9-_]{0,63}$/;
