import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay from 'find-my-way';
import { type ErrorCode, HostError, problemOf } from '../errors/index.js';
import { sendProblem } from './problem.js';

/** Longest URL the host's own routes accept; a longer one is answered 414 before routing. */
export const MAX_URL_LENGTH = 8192;

/** Largest body an admin route accepts; bigger bodies are refused with 413 before they are read. */
export const ADMIN_BODY_LIMIT = 16 * 1024;

const PROBE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * Answers requests the HTTP parser refuses (unknown method, oversized request
 * line or headers, garbage) with a problem document instead of Node's bare
 * 400, then closes the connection. Installed as Fastify's `clientErrorHandler`.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  let code: ErrorCode = 'PH_ERR_MALFORMED_REQUEST';
  let detail = `the request could not be parsed (${err.code ?? 'parse error'})`;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    code = 'PH_ERR_HEADERS_TOO_LARGE';
    detail = 'the request line (URL) or the headers exceed the size limit';
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    code = 'PH_ERR_REQUEST_TIMEOUT';
    detail = 'the request was not received in time';
  } else if (err.code === 'HPE_INVALID_METHOD') {
    detail = 'unknown HTTP method';
  }
  const p = problemOf(code, detail);
  const body = JSON.stringify(p);
  socket.end(
    `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}\r\n` +
      'Content-Type: application/problem+json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/**
 * Fastify's `frameworkErrors`: errors its router raises before any route runs
 * (a path parameter over `maxParamLength`, a URL that does not decode).
 */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendProblem(reply, problemOf('PH_ERR_URL_TOO_LONG', 'a segment of the URL path is longer than the router accepts'));
  } else if (err.code === 'FST_ERR_BAD_URL') {
    sendProblem(reply, problemOf('PH_ERR_MALFORMED_REQUEST', 'the URL is not correctly percent-encoded'));
  } else {
    sendProblem(reply, problemOf('PH_ERR_BAD_REQUEST', err.message));
  }
}

/**
 * Hostile-input defences of the host's own Fastify instance (plugin routes are
 * dispatched before it and are not affected):
 * - URLs longer than `MAX_URL_LENGTH` are refused with 414;
 * - a path that exists for other methods answers 405 with `Allow`, any other miss 404;
 * every answer being a problem document with a stable code.
 * Must be called before any route is registered (it records them). `elsewhere`
 * names the routes another listener serves: they answer 404 here, never 405 (an
 * `Allow` header would tell a client what the other listener does).
 * Returns whether this instance has a route for a method and path.
 */
export function installHttpHardening(
  app: FastifyInstance,
  elsewhere: (method: string, path: string) => boolean = () => false,
): (method: string, path: string) => boolean {
  const known = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false });
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      try {
        known.on(m as FindMyWay.HTTPMethod, route.url, () => {});
      } catch {
        // the same route registered twice (HEAD twins): already known
      }
    }
  });
  app.addHook('onRequest', async (req) => {
    if (req.url.length > MAX_URL_LENGTH) {
      throw new HostError('PH_ERR_URL_TOO_LONG', `the URL is ${req.url.length} characters long; the limit is ${MAX_URL_LENGTH}`);
    }
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '/';
    if (req.url.length > MAX_URL_LENGTH) {
      return sendProblem(reply, problemOf('PH_ERR_URL_TOO_LONG', `the URL is longer than ${MAX_URL_LENGTH} characters`));
    }
    const allowed = PROBE_METHODS.filter((m) => m !== req.method && known.find(m, path) !== null);
    if (allowed.length > 0 && !elsewhere(req.method, path)) {
      reply.header('allow', allowed.join(', '));
      return sendProblem(
        reply,
        problemOf('PH_ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`),
      );
    }
    return sendProblem(reply, problemOf('PH_ERR_NOT_FOUND', `no route for ${req.method} ${path}`));
  });
  return (method, path) => known.find(method as FindMyWay.HTTPMethod, path) !== null;
}
