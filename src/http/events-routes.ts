import type { FastifyInstance } from 'fastify';
import { type ConsoleFeed, type FeedSubscriber, frame } from '../console/feed.js';
import { problemOf } from '../errors/index.js';
import { sendProblem } from './problem.js';

export interface EventsRoutesOptions {
  feed: ConsoleFeed;
  nodeId: string;
  /** Streams open at once; more are refused with 503 (each holds a socket). */
  maxStreams?: number;
  /** A comment line this often keeps proxies from closing an idle stream and finds dead peers. */
  keepAliveMs?: number;
}

/** Buffered bytes after which a stream that does not read is closed; it reconnects and resyncs. */
const MAX_BUFFERED = 1024 * 1024;

/**
 * `GET /events`: a server-sent events stream of the console feed (read-only, no secret).
 * The first event, `hello`, is written after the subscription is in place, so a page that
 * re-reads everything when it gets `hello` misses nothing that happens afterwards; every
 * reconnection starts with a new `hello`, which is the page's resync.
 */
export async function eventsRoutes(app: FastifyInstance, o: EventsRoutesOptions): Promise<void> {
  const maxStreams = o.maxStreams ?? 256;
  const keepAliveMs = o.keepAliveMs ?? 15_000;

  app.get(
    '/events',
    {
      schema: {
        tags: ['console'],
        summary: 'Server-sent events: what changed, for the console to re-read',
        description:
          'text/event-stream. `hello` first on every connection (re-read everything), then `change` with `{"plugins": [names], "causes": ["desired" | "observed" | "cluster"]}` and `resync` (re-read everything: this node resubscribed to notifications). Events name plugins and never carry their state.',
        response: {
          200: { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        },
      },
    },
    async (req, reply) => {
      if (o.feed.size >= maxStreams) {
        reply.header('retry-after', '5');
        return sendProblem(reply, problemOf('PH_ERR_EVENTS_LIMIT', `${maxStreams} event streams are open on this node already`));
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        // tells nginx-like proxies not to buffer the stream
        'x-accel-buffering': 'no',
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      let done = false;
      let unsubscribe = () => {};
      let keepAlive: NodeJS.Timeout | undefined;
      const finish = () => {
        if (done) return;
        done = true;
        unsubscribe();
        clearInterval(keepAlive);
        res.end();
      };
      const sub: FeedSubscriber = {
        send(f) {
          if (done) return;
          if (res.writableLength > MAX_BUFFERED) return finish();
          res.write(f);
        },
        end: finish,
      };
      unsubscribe = o.feed.subscribe(sub);
      if (done) return; // the feed is closed: the host is shutting down
      keepAlive = setInterval(() => sub.send(': keep-alive\n\n'), keepAliveMs);
      keepAlive.unref();
      req.raw.socket.setTimeout(0);
      res.on('close', finish);
      // reconnect after 1 s (the browser's default is 3 s), then the hello that starts every connection
      sub.send(`retry: 1000\n\n${frame('hello', { node_id: o.nodeId, at: new Date().toISOString() })}`);
    },
  );
}
