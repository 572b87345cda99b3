import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { DerivedSettings, HostConfig } from '../config/index.js';
import { consoleRoutes } from '../console/index.js';
import {
  adminRoutes,
  clientErrorHandler,
  clusterRoutes,
  type DescribedRoute,
  eventsRoutes,
  frameworkErrors,
  healthRoutes,
  hostErrorHandler,
  installHttpHardening,
  type LazySchemaCompilers,
  metricsRoutes,
  OpenApiDocument,
  openapiRoutes,
  pluginsRoutes,
  releaseReadRoutes,
  tokenAuthentication,
} from '../http/index.js';
import { type Dispatcher, HostPaths, type UpgradeListener, upgradeListener } from '../routing/index.js';
import { tokenRoutes } from '../tokens/index.js';
import type { Core } from './core.js';

/**
 * The host's two listeners. The data plane (`PORT`) is what the public reaches: the plugins'
 * routes, the read API, health and an OpenAPI document of those. The control plane
 * (`ADMIN_PORT` on `ADMIN_HOST`, loopback by default) holds the console, every write, the
 * event feed, metrics, the cluster view and the full document. Another port is another
 * origin for a browser: a plugin's page, whatever script or service worker it installs,
 * never runs where the console and its token live.
 */
export interface Planes {
  data: FastifyInstance;
  control: FastifyInstance;
  documents: OpenApiDocument[];
}

export interface PlanesOptions {
  config: HostConfig;
  derived: DerivedSettings;
  log: FastifyBaseLogger;
  core: Core;
  dispatcher: Dispatcher;
  schemas: LazySchemaCompilers;
  version: string;
  reasons(): Promise<string[]>;
}

/** `http://address:port` of a listening Fastify instance. */
export function urlOf(app: FastifyInstance): string {
  const a = app.server.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

function newApp(
  o: PlanesOptions,
  routes: DescribedRoute[],
  wrap?: (h: http.RequestListener) => http.RequestListener,
  upgrades?: (h: http.RequestListener) => UpgradeListener,
): FastifyInstance {
  const app = Fastify({
    loggerInstance: o.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 200 },
    schemaController: { compilersFactory: o.schemas.factories() },
    forceCloseConnections: 'idle',
    clientErrorHandler,
    frameworkErrors,
    serverFactory: (handler, opts) => {
      const listener = wrap === undefined ? handler : wrap(handler);
      const server = http.createServer(
        {
          maxHeaderSize: 16 * 1024,
          // a client that sends its headers or body slowly is answered 408 and cut off, not kept forever
          requestTimeout: o.config.requestTimeoutMs,
          headersTimeout: o.config.headersTimeoutMs,
          connectionsCheckingInterval: o.derived.connectionsCheckingIntervalMs,
        },
        listener,
      );
      if (upgrades !== undefined) server.on('upgrade', upgrades(listener));
      // Fastify applies this only to servers it creates itself: keep its default for ours
      server.keepAliveTimeout = Number(opts.keepAliveTimeout ?? 72_000);
      return server;
    },
  });
  app.setErrorHandler(hostErrorHandler);
  app.addHook('onRoute', (route) => {
    routes.push({ method: route.method, url: route.url, schema: route.schema });
  });
  return app;
}

/** Builds both listeners (not listening yet) and their route tables; the dispatcher learns every host path. */
export async function buildPlanes(o: PlanesOptions): Promise<Planes> {
  const { config: c, core, derived } = o;
  const dataRoutes: DescribedRoute[] = [];
  const controlRoutes: DescribedRoute[] = [];
  // upgrades (WebSockets) go through the same route table as requests: to the plugin owning the path
  const data = newApp(
    o,
    dataRoutes,
    (h) => o.dispatcher.handler(h),
    (h) => upgradeListener(o.dispatcher, h),
  );
  const control = newApp(o, controlRoutes);
  const controlServes = installHttpHardening(control);
  installHttpHardening(data, controlServes);
  const authenticate = tokenAuthentication(core.access, ['GET /events']);
  const reads = {
    repo: core.repo,
    manager: core.manager,
    discoveryErrors: core.admin.discoveryErrors,
    nodeId: c.nodeId,
    liveWithinMs: derived.liveWithinMs,
  };
  const health = { reasons: o.reasons };
  const servers = (app: FastifyInstance, description: string) => () => (app.server.listening ? [{ url: urlOf(app), description }] : []);
  const dataDoc = new OpenApiDocument(dataRoutes, o.version, o.dispatcher, core.manager, o.log, {
    servers: servers(data, 'data plane'),
  });
  const controlDoc = new OpenApiDocument(controlRoutes, o.version, o.dispatcher, core.manager, o.log, {
    servers: servers(control, 'control plane'),
    pluginServers: servers(data, 'data plane: plugin routes'),
  });

  data.register(pluginsRoutes, { ...reads, hookTimeoutMs: c.hookTimeoutMs });
  data.register(healthRoutes, health);
  data.register(openapiRoutes, { document: dataDoc });

  control.register(pluginsRoutes, { ...reads, hookTimeoutMs: c.hookTimeoutMs });
  control.register(healthRoutes, health);
  control.register(adminRoutes, {
    ...reads,
    access: core.access,
    admin: core.admin,
    uploadLimitBytes: c.uploadLimitBytes,
    settleTimeoutMs: derived.settleTimeoutMs,
    releases: core.releases,
    schemas: o.schemas,
  });
  control.register(tokenRoutes, { access: core.access });
  control.register(releaseReadRoutes, { releases: core.releases, liveWithinMs: derived.liveWithinMs });
  control.register(metricsRoutes, { metrics: core.metrics });
  control.register(clusterRoutes, { ...reads, history: core.errorHistory });
  control.register(eventsRoutes, {
    feed: core.feed,
    nodeId: c.nodeId,
    authenticate,
    maxStreams: c.eventsMaxStreams,
    maxPerCaller: c.eventsMaxPerCaller,
    maxAgeMs: c.eventsMaxAgeMs,
  });
  control.register(consoleRoutes, { nodeId: c.nodeId, version: o.version });
  control.register(openapiRoutes, { document: controlDoc });
  await Promise.all([data.ready(), control.ready()]);
  // Every route of the host is registered now: from here on its paths are the host's, before any plugin loads.
  // Both planes' paths stay out of plugins' reach, so a path means one thing whichever listener is asked.
  o.dispatcher.setHostPaths(HostPaths.fromRoutes([...dataRoutes, ...controlRoutes].map((r) => r.url)));
  o.dispatcher.allowRouteOverlap(c.routeOverlapAllow);
  return { data, control, documents: [dataDoc, controlDoc] };
}

/** Listens on both ports: the data plane on `PORT`/`HOST`, the control plane on `ADMIN_PORT`/`ADMIN_HOST`. */
export async function listenPlanes(p: Planes, c: HostConfig): Promise<void> {
  await p.data.listen({ port: c.port, host: c.host });
  await p.control.listen({ port: c.adminPort, host: c.adminHost });
}

/** Stops both listeners: plugin answers carry `Connection: close`, in-flight requests drain (bounded), then sockets are cut. */
export async function closePlanes(p: Planes, dispatcher: Dispatcher, drainTimeoutMs: number): Promise<void> {
  dispatcher.startDraining();
  await Promise.all(
    [p.data, p.control].map(async (app) => {
      const closed = app.close();
      const bounded = await Promise.race([closed.then(() => true), delay(drainTimeoutMs).then(() => false)]);
      if (!bounded) app.server.closeAllConnections();
    }),
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
