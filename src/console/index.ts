import type { FastifyInstance } from 'fastify';
import { HostError } from '../errors/index.js';
import { ConsoleAssets } from './assets.js';
import { consolePage, PAGE_HEADERS } from './page.js';

export { type ClusterView, clusterView } from './cluster.js';
export { ClusterWatch } from './cluster-watch.js';
export { ErrorHistory, type HistoryEntry } from './error-history.js';
export { ConsoleFeed, type FeedCause, type FeedSubscriber, frame } from './feed.js';

export interface ConsoleRoutesOptions {
  nodeId: string;
  /** The host's version, shown in the header. */
  version: string;
}

/** Every path the console's page loads from this host (no other host is ever asked for anything). */
export const CONSOLE_ASSETS = ['/console/app.js', '/console/console.css'] as const;

/**
 * `GET /console`, the operator console: a server-rendered shell plus one script and one
 * stylesheet from this host. Everything the page shows it reads from the read API and
 * `GET /events`; everything it changes goes through the admin API.
 */
export async function consoleRoutes(app: FastifyInstance, o: ConsoleRoutesOptions): Promise<void> {
  const assets = new ConsoleAssets();
  const page = consolePage(o);

  app.get(
    '/console',
    {
      schema: {
        tags: ['console'],
        summary: 'The operator console (HTML page)',
        description:
          'Lists every plugin and its state on every live node, updates live from `GET /events`, and enables, disables and reloads plugins through the admin API with the admin token typed into the page.',
        response: { 200: { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    async (_req, reply) => {
      // the browser asks for the script right after the page: start building it now
      assets.get('app.js').catch(() => {});
      return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(page);
    },
  );

  for (const url of CONSOLE_ASSETS) {
    const name = url.slice('/console/'.length) as 'app.js' | 'console.css';
    app.get(url, { schema: { hide: true } }, async (req, reply) => {
      let a: Awaited<ReturnType<ConsoleAssets['get']>>;
      try {
        a = await assets.get(name);
      } catch (err) {
        req.log.error({ err }, `console asset ${name} could not be built`);
        throw new HostError('PH_ERR_INTERNAL', `the console's ${name} could not be built`, { cause: err });
      }
      reply.headers({ etag: a.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
      return reply.type(a.type).send(a.body);
    });
  }
}
