import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PROBLEM_CONTENT_TYPE, problemOf } from '../errors/index.js';
import type { RequestHandler } from '../runtime/index.js';
import type { Dispatcher } from './dispatcher.js';

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * The data plane's `upgrade` listener. An upgrade (a WebSocket handshake) for a
 * path a plugin version serves, and that version takes upgrades (an inline
 * version whose Fastify listens for them, e.g. with `@fastify/websocket`), is
 * handed to that version, found in the same route table as any request: the
 * socket then belongs to it, and counts as one of its requests in flight until
 * it closes, so a replaced version drains its sockets like its requests.
 *
 * Any other upgrade is answered as the plain HTTP request it also is (a server
 * may ignore `Upgrade`), through the data plane's own handler, on a connection
 * closed after the answer: a path no plugin serves gets the host's 404, a
 * plugin route that takes no upgrade gets the plugin's answer. Node sends every
 * request carrying `Upgrade` here once a listener exists, `h2c` probes included,
 * so none of them may hang or be dropped without an answer.
 */
export function upgradeListener(dispatcher: Dispatcher, plain: RequestHandler): UpgradeListener {
  return (req, socket, head) => {
    // Node removes its own error listener before emitting 'upgrade': a reset socket must not crash the host
    socket.on('error', () => socket.destroy());
    const url = req.url ?? '/';
    const e = dispatcher.hostPaths.owns(url) ? undefined : dispatcher.current.lookup(req.method ?? 'GET', url);
    const p = e?.plugin;
    if (p?.upgrade !== undefined && e !== undefined) {
      e.hits++;
      p.inflight++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        p.release();
      };
      if (p.upgrade(req, socket, head)) {
        socket.once('close', release);
        if (socket.destroyed) release();
        return;
      }
      release();
    }
    answerPlain(req, socket, plain);
  };
}

/** Serves an upgrade request as a plain one on its socket, then closes the connection. */
function answerPlain(req: IncomingMessage, socket: Duplex, plain: RequestHandler): void {
  // The request's parser is gone: a body would never arrive, so a request announcing one is refused at once.
  const bodied = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (bodied) {
    const body = JSON.stringify(problemOf('PH_ERR_BAD_REQUEST', 'an upgrade request with a body is not served here'));
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    return;
  }
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as never);
  res.on('finish', () => {
    res.detachSocket(socket as never);
    socket.end();
  });
  res.on('close', () => {
    if (!res.writableFinished) socket.destroy();
  });
  plain(req, res);
}
