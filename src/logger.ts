import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { redactLogLine } from './secrets/redact.js';

/** Request headers that carry credentials: never written, whoever logs the headers object. */
export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];

/**
 * Where a headers object is found in a line: a request or response logged
 * whole (`{req}`, `{res}`, `{request}`, `{reply}`), or headers logged on
 * their own. No wildcard first key: pino would then run every value of every
 * line through the redaction; with named keys, a line holding none of them
 * pays nothing.
 */
const REDACTED_PATHS = CREDENTIAL_HEADERS.flatMap((h) => {
  const key = `["${h}"]`;
  return ['headers', 'req.headers', 'res.headers', 'request.headers', 'reply.headers'].map((p) => `${p}${key}`);
});

interface RequestLike {
  method?: unknown;
  url?: unknown;
  raw?: { method?: unknown; url?: unknown };
}

/**
 * Lines about a request keep its method and URL (the plugin and the request
 * id are bound to the logger): no headers, no remote address, nothing a
 * client sent besides the line it asked for.
 */
const serializers = {
  req(req: RequestLike) {
    return { method: req.method ?? req.raw?.method, url: req.url ?? req.raw?.url };
  },
  res(res: { statusCode?: unknown }) {
    return { statusCode: res.statusCode };
  },
  err: pino.stdSerializers.err,
};

/**
 * Structured JSON logs; plugin lines carry `plugin`. Every line, whoever
 * logged it (the host, Fastify, a plugin through `ctx.log`), has the resolved
 * values of plugin secrets replaced before it is written, and credential
 * headers removed.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): FastifyBaseLogger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      serializers,
      redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
      hooks: { streamWrite: redactLogLine },
    },
    destination,
  ) as unknown as FastifyBaseLogger;
}
