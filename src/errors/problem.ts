import { STATUS_CODES } from 'node:http';
import { ERROR_CODES, type ErrorCode, type HostError } from './registry.js';

/**
 * RFC 9457 problem details, plus the stable `code`. The one place a problem
 * body is shaped: the host's error handler, its 404/405 answers, the HTTP
 * parser's refusals and every plugin's error handler (inline or in a worker)
 * all build theirs here.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemOf(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const spec = ERROR_CODES[code];
  return { type: 'about:blank', title: spec.title, status: spec.status, detail, code, ...extra };
}

/** Stable code for a 4xx error raised by Fastify (validation, bad JSON, body too large…) or thrown on purpose with a status. */
export function clientErrorCode(status: number, fastifyCode: string | undefined, validation: boolean): ErrorCode {
  if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) return 'PH_ERR_PAYLOAD_TOO_LARGE';
  if (fastifyCode === 'FST_ERR_CTP_INVALID_JSON_BODY' || fastifyCode === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'PH_ERR_INVALID_JSON';
  if (fastifyCode === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) return 'PH_ERR_UNSUPPORTED_MEDIA_TYPE';
  if (validation || fastifyCode === 'FST_ERR_VALIDATION') return 'PH_ERR_VALIDATION';
  if (status === 404) return 'PH_ERR_NOT_FOUND';
  if (status === 405) return 'PH_ERR_METHOD_NOT_ALLOWED';
  if (status === 414) return 'PH_ERR_URL_TOO_LONG';
  if (status === 406) return 'PH_ERR_NOT_ACCEPTABLE';
  if (status === 429) return 'PH_ERR_TOO_MANY_REQUESTS';
  if (status === 400) return 'PH_ERR_BAD_REQUEST';
  // any other 4xx a plugin chose: its own status, titled by its reason phrase (a 409 is not a "Bad request")
  return 'PH_ERR_CLIENT_ERROR';
}

interface ThrownShape {
  statusCode?: unknown;
  validation?: unknown;
  code?: unknown;
  message?: unknown;
}

/** The status an error asks for: its `statusCode` when it is a 4xx or 5xx integer, else 500. */
export function statusOf(thrown: unknown): number {
  const sc = (thrown !== null && typeof thrown === 'object' ? (thrown as ThrownShape) : {}).statusCode;
  return typeof sc === 'number' && Number.isInteger(sc) && sc >= 400 && sc < 600 ? sc : 500;
}

/**
 * The problem for a 4xx error: described (the message is meant for the
 * client), with a stable `PH_ERR_*` code and the original code kept beside it
 * (`fastify_code` for Fastify's own, `plugin_code` for one a plugin chose).
 */
export function clientProblem(thrown: unknown, status: number, keepForeignCode: boolean): Problem {
  const err = (thrown !== null && typeof thrown === 'object' ? thrown : {}) as ThrownShape;
  const original = typeof err.code === 'string' ? err.code : undefined;
  const code = clientErrorCode(status, original, err.validation !== undefined);
  const detail = typeof err.message === 'string' ? err.message : ERROR_CODES[code].title;
  const kept =
    original === undefined
      ? {}
      : original.startsWith('FST_')
        ? { fastify_code: original }
        : keepForeignCode
          ? { plugin_code: original }
          : {};
  const title = code === 'PH_ERR_CLIENT_ERROR' ? (STATUS_CODES[status] ?? ERROR_CODES[code].title) : ERROR_CODES[code].title;
  return { ...problemOf(code, detail), title, status, ...kept };
}

/** A host error as a problem, with its details. */
export function hostProblem(err: HostError): Problem {
  return { ...problemOf(err.code, err.message), ...(err.details ? { details: err.details } : {}) };
}

/**
 * The problem a plugin route answers when its handler fails: a 5xx (whatever
 * was thrown) names no internals; a 4xx is described. `plugin` names the plugin
 * in the 5xx detail.
 */
export function pluginProblem(plugin: string, thrown: unknown): Problem {
  const status = statusOf(thrown);
  if (status >= 500) {
    return { ...problemOf('PH_ERR_PLUGIN_HANDLER', `plugin ${plugin} failed to handle the request`), status };
  }
  return clientProblem(thrown, status, true);
}
