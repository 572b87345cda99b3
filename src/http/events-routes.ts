import type { FastifyInstance } from 'fastify';
import { type ConsoleFeed, type FeedSubscriber, frame } from '../console/feed.js';
import { problemOf } from '../errors/index.js';
import type { Authenticate } from './auth.js';
import { sendProblem } from './problem.js';

export interface EventsRoutesOptions {
  feed: ConsoleFeed;
  nodeId: string;
  /** Who the caller is (`./auth.ts`): nobody anonymous holds a stream. */
  authenticate: Authenticate;
  /** Streams open at once; more are refused with 503 (each holds a socket). */
  maxStreams?: number;
  /** Streams open at once per caller: one credential cannot take every slot. */
  maxPerCaller?: number;
  /** A stream is ended after this long (the client reconnects and resyncs): no stream is held forever. */
  maxAgeMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream and finds dead peers. */
  keepAliveMs?: number;
}

/** Buffered bytes after which a stream that does not read is closed; it reconnects and resyncs. */
const MAX_BUFFERED = 1024 * 1024;

/** Seconds a refused client is told to wait (`Retry-After`). */
const RETRY_AFTER_S = '5';

/**
 * `GET /events`: a server-sent events stream of the console feed (read-only, no secret).
 * The first event, `hello`, is written after the subscription is in place, so a page that
 * re-reads everything when it gets `hello` misses nothing that happens afterwards; every
 * reconnection starts with a new `hello`, which is the page's resync.
 *
 * A stream takes a slot only once its caller is authenticated (an anonymous client is
 * refused before it holds anything), within a cap per caller and a total cap, and ends
 * after `maxAgeMs` whatever it does: a full feed answers 503 with `Retry-After`.
 */
export async function eventsRoutes(app: FastifyInstance, o: EventsRoutesOptions): Promise<void> {
  const maxStreams = o.maxStreams ?? 256;
  const keepAliveMs = o.keepAliveMs ?? 15_000;
  const maxPerCaller = o.maxPerCaller ?? 16;
  const maxAgeMs = o.maxAgeMs ?? 15 * 60_000;
  /** Open streams per caller id. */
  const open = new Map<string, number>();

  app.get(
    '/events',
    {
      schema: {
        tags: ['console'],
        security: [{ bearerAuth: [] }],
        summary: 'Server-sent events: what changed, for the console to re-read',
        description:
          'Needs the bearer token; capped per token (EVENTS_MAX_PER_TOKEN) and in total (EVENTS_MAX_STREAMS), a full feed answering 503 with Retry-After; a stream ends after EVENTS_MAX_AGE_MS (reconnect). text/event-stream. `hello` first on every connection (re-read everything), then `change` with `{"plugins": [names], "causes": ["desired" | "observed" | "cluster"]}` and `resync` (re-read everything: this node resubscribed to notifications). Events name plugins and never carry their state.',
        response: {
          200: { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        },
      },
    },
    async (req, reply) => {
      const caller = await o.authenticate(req, reply);
      const mine = open.get(caller.id) ?? 0;
      if (o.feed.size >= maxStreams || mine >= maxPerCaller) {
        reply.header('retry-after', RETRY_AFTER_S);
        const detail =
          mine >= maxPerCaller
            ? `this caller has ${maxPerCaller} event streams open on this node already (EVENTS_MAX_PER_TOKEN)`
            : `${maxStreams} event streams are open on this node already (EVENTS_MAX_STREAMS)`;
        return sendProblem(reply, problemOf('PH_ERR_EVENTS_LIMIT', detail));
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
      let maxAge: NodeJS.Timeout | undefined;
      open.set(caller.id, mine + 1);
      const finish = () => {
        if (done) return;
        done = true;
        const left = (open.get(caller.id) ?? 1) - 1;
        if (left > 0) open.set(caller.id, left);
        else open.delete(caller.id);
        unsubscribe();
        clearInterval(keepAlive);
        clearTimeout(maxAge);
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
      maxAge = setTimeout(finish, maxAgeMs);
      maxAge.unref();
      req.raw.socket.setTimeout(0);
      res.on('close', finish);
      // reconnect after 1 s (the browser's default is 3 s), then the hello that starts every connection
      sub.send(`retry: 1000\n\n${frame('hello', { node_id: o.nodeId, at: new Date().toISOString() })}`);
    },
  );
}
