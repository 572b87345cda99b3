// What the console reads and writes: the host's own read API (`GET /plugins`, `GET /cluster`,
// `GET /plugins/:name`, `GET /plugins/:name/errors`) and its admin API. Nothing else.

import type { ActionResult, ConfigChange, ConfigState } from '../../model/answers.js';

export type {
  ActionResult,
  ClusterNode,
  ClusterView,
  ConfigChange,
  ConfigState,
  Endpoint,
  HistoryEntry,
  NodePluginState,
  PluginDetail,
  PluginItem,
  RecordedError,
  RolloutInfo,
  VersionEntry,
} from '../../model/answers.js';

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
