import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ErrorCode, PROBLEM_CONTENT_TYPE, problemOf } from '../../errors/index.js';
import type { WireHeaders, WireRequest } from './protocol.js';

/** An answer the serving thread gives itself, as a problem document. */
export function answerProblem(res: ServerResponse, code: ErrorCode, detail: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problemOf(code, detail));
  res.writeHead(problemOf(code, detail).status, {
    ...headers,
    'content-type': `${PROBLEM_CONTENT_TYPE}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** True when the request announces no body: it can be forwarded at once, without waiting for 'end'. */
function bodyless(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  return te === undefined && (cl === undefined || cl === '0');
}

/**
 * Reads the request's body (up to `limit` bytes) and hands the message to
 * `send`; a body over the limit is answered 413 and not forwarded. Request
 * bodies are forwarded whole, not streamed.
 */
export function readRequest(req: IncomingMessage, res: ServerResponse, id: number, limit: number, send: (msg: WireRequest) => void): void {
  const base = {
    t: 'req' as const,
    id,
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    remoteAddress: req.socket?.remoteAddress,
  };
  if (bodyless(req)) {
    send({ ...base, body: undefined });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on('data', (c: Buffer) => {
    if (refused) return;
    size += c.length;
    if (size > limit) {
      refused = true;
      res.setHeader('connection', 'close');
      answerProblem(res, 'PH_ERR_PAYLOAD_TOO_LARGE', `the request body is larger than ${limit} bytes`);
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (refused) return;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
    send({ ...base, body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) });
  });
  req.on('error', () => {
    refused = true;
  });
}

/** Headers as the worker's Fastify set them, for `writeHead` (its `content-length` is kept). */
export function headersOf(h: WireHeaders): Record<string, string | number | string[]> {
  return h;
}
