import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, type ErrorCode, HostError } from '../errors/index.js';

/** RFC 9457 problem details, plus the stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [extra: string]: unknown;
}

export function problemOf(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const spec = ERROR_CODES[code];
  return { type: 'about:blank', title: spec.title, status: spec.status, detail, code, ...extra };
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type('application/problem+json').send(p);
}

/** Maps Fastify's own 4xx errors to stable codes. */
function fastifyCode(err: FastifyError): ErrorCode {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'PH_ERR_PAYLOAD_TOO_LARGE';
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'PH_ERR_INVALID_JSON';
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.statusCode === 415) return 'PH_ERR_UNSUPPORTED_MEDIA_TYPE';
  if (err.code === 'FST_ERR_VALIDATION') return 'PH_ERR_VALIDATION';
  if (err.statusCode === 413) return 'PH_ERR_PAYLOAD_TOO_LARGE';
  if (err.statusCode === 414) return 'PH_ERR_URL_TOO_LONG';
  return 'PH_ERR_BAD_REQUEST';
}

/** The host's error handler: HostErrors keep their code; Fastify 4xx are mapped; anything else is a 500 naming no internals. */
export function hostErrorHandler(err: FastifyError | HostError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof HostError) {
    return sendProblem(reply, { ...problemOf(err.code, err.message), ...(err.details ? { details: err.details } : {}) });
  }
  const fe = err as FastifyError;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fastifyCode(fe);
    return sendProblem(reply, { ...problemOf(code, fe.message), status: fe.statusCode, fastify_code: fe.code });
  }
  request.log.error({ err }, 'request failed');
  return sendProblem(reply, problemOf('PH_ERR_INTERNAL', 'the server failed to handle the request'));
}
