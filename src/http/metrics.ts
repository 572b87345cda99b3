import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PluginRepository } from '../db/index.js';
import type { PluginManager } from '../manager/index.js';
import { PLUGIN_STATES } from '../model/index.js';
import type { RolloutDecisions } from '../releases/index.js';
import type { Dispatcher } from '../routing/index.js';
import { type RouteEntry, routeEntries } from '../routing/index.js';
import { LATENCY_BUCKETS_MS, type LoadedVersion, processFaultCounts, type WorkerRuntime } from '../runtime/index.js';

export interface HostMetricsOptions {
  manager: PluginManager;
  dispatcher: Dispatcher;
  repo: PluginRepository;
  /** Process-wide metrics (CPU, memory, event loop); off for hosts sharing a process in tests. */
  defaultMetrics?: boolean;
  /** The worker runtime, whose restarts, heaps, event-loop delays and forwarded requests are reported. */
  workers?: WorkerRuntime | undefined;
  /** Rollout decisions made on this node, counted by outcome. */
  decisions?: RolloutDecisions | undefined;
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics of one host, in its own registry:
 * - `plugin_host_plugins{state}`: plugins on this node by lifecycle state;
 * - `plugin_host_plugins_desired{status}`: plugins in the database by desired status;
 * - `plugin_host_plugin_loads_total{plugin,kind}` and `plugin_host_plugin_load_duration_seconds{kind}` (kind = load | reload);
 * - `plugin_host_plugin_unloads_total{plugin}`;
 * - `plugin_host_plugin_failures_total{plugin,code}`;
 * - `plugin_host_plugin_requests_total{plugin,method,route}`: requests dispatched to plugin routes;
 * - `plugin_host_rollouts_total{outcome}`: rollout decisions made on this node (started, promoted, aborted);
 * - `plugin_host_process_faults_total{plugin}`: uncaught exceptions and unhandled rejections survived, by plugin.
 *
 * Request counts are integers the dispatcher increments on route entries;
 * they are folded into the counter when scraped, never on the request path.
 */
export class HostMetrics {
  readonly registry = new Registry();
  private readonly loads: Counter<'plugin' | 'kind'>;
  private readonly loadDuration: Histogram<'kind'>;
  private readonly unloads: Counter<'plugin'>;
  private readonly failures: Counter<'plugin' | 'code'>;
  private readonly requests: Counter<'plugin' | 'method' | 'route'>;
  /** Versions that have served here and whose route counts are not fully folded yet. */
  private readonly tracked = new Set<LoadedVersion>();
  /** Count of each route entry already added to the counter. */
  private readonly folded = new WeakMap<RouteEntry, number>();
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly o: HostMetricsOptions) {
    const registers = [this.registry];
    const m = o.manager;
    new Gauge({
      name: 'plugin_host_plugins',
      help: 'Plugins on this node by lifecycle state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<string, number>(PLUGIN_STATES.map((s) => [s, 0]));
        for (const s of m.snapshots()) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    const repo = o.repo;
    new Gauge({
      name: 'plugin_host_plugins_desired',
      help: 'Plugins registered in the database by desired status (absent while the database is unreachable)',
      labelNames: ['status'],
      registers,
      async collect() {
        this.reset();
        try {
          const rows = await repo.list();
          const counts = new Map<string, number>([
            ['active', 0],
            ['inactive', 0],
          ]);
          for (const r of rows) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
          for (const [status, n] of counts) this.set({ status }, n);
        } catch {
          // database unreachable: leave the gauge empty rather than fail the scrape
        }
      },
    });
    this.loads = new Counter({
      name: 'plugin_host_plugin_loads_total',
      help: 'Plugin versions loaded on this node (kind: load = first version, reload = replaced a serving version)',
      labelNames: ['plugin', 'kind'],
      registers,
    });
    this.loadDuration = new Histogram({
      name: 'plugin_host_plugin_load_duration_seconds',
      help: 'Time from starting to load a version to serving it (compile, evaluate, initialize, routes, swap)',
      labelNames: ['kind'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.unloads = new Counter({
      name: 'plugin_host_plugin_unloads_total',
      help: 'Plugins unloaded on this node (disabled, removed or shut down)',
      labelNames: ['plugin'],
      registers,
    });
    this.failures = new Counter({
      name: 'plugin_host_plugin_failures_total',
      help: 'Failed attempts to compile or load a plugin, by error code',
      labelNames: ['plugin', 'code'],
      registers,
    });
    this.requests = new Counter({
      name: 'plugin_host_plugin_requests_total',
      help: 'Requests dispatched to plugin routes',
      labelNames: ['plugin', 'method', 'route'],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'plugin_host_plugin_inflight_requests',
      help: 'Requests in flight per serving plugin on this node',
      labelNames: ['plugin'],
      registers,
      collect() {
        this.reset();
        self.foldRequests();
        for (const p of o.dispatcher.current.plugins.values()) this.set({ plugin: p.name }, p.inflight);
      },
    });
    const rollouts = new Counter({
      name: 'plugin_host_rollouts_total',
      help: 'Staged rollout decisions made on this node, by outcome (started, promoted, aborted)',
      labelNames: ['outcome'],
      registers,
    });
    o.decisions?.onDecision((d) => rollouts.inc({ outcome: d.outcome }));
    new Gauge({
      name: 'plugin_host_process_faults_total',
      help: "Uncaught exceptions and unhandled rejections this process survived, by the plugin whose scope raised them ('' = not attributed)",
      labelNames: ['plugin'],
      registers,
      collect() {
        this.reset();
        for (const [plugin, n] of processFaultCounts()) this.set({ plugin }, n);
      },
    });
    // The event-loop delay is sampled every 50 ms, not prom-client's default 10: each sample wakes the serving
    // thread, and 100 wake-ups a second cost an idle host more CPU than all its other timers together.
    if (o.defaultMetrics) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 50 });
    if (o.workers !== undefined) registerWorkerMetrics(this.registry, o.workers);

    const onLoaded = (name: string, ms: number, reload: boolean) => {
      const kind = reload ? 'reload' : 'load';
      this.loads.inc({ plugin: name, kind });
      this.loadDuration.observe({ kind }, ms / 1000);
      // Fold now: a replaced version gets no new hits after the swap, and must not be kept alive until the next scrape.
      this.foldRequests();
    };
    const onUnloaded = (name: string) => {
      this.unloads.inc({ plugin: name });
      this.foldRequests();
    };
    const onFailed = (name: string, code: string) => this.failures.inc({ plugin: name, code });
    m.on('loaded', onLoaded);
    m.on('unloaded', onUnloaded);
    m.on('failed', onFailed);
    this.listeners.push(
      () => m.off('loaded', onLoaded),
      () => m.off('unloaded', onUnloaded),
      () => m.off('failed', onFailed),
    );
  }

  /** Adds the route hits counted since the last fold; forgets versions that left the route table (their counts are final). */
  private foldRequests(): void {
    const current = new Set(this.o.dispatcher.current.plugins.values());
    for (const p of current) this.tracked.add(p);
    for (const p of this.tracked) {
      for (const e of routeEntries(p)) {
        const before = this.folded.get(e) ?? 0;
        if (e.hits > before) {
          this.requests.inc({ plugin: p.name, method: e.method, route: e.url }, e.hits - before);
          this.folded.set(e, e.hits);
        }
      }
      if (!current.has(p)) this.tracked.delete(p);
    }
  }

  async render(): Promise<string> {
    this.foldRequests();
    return this.registry.metrics();
  }

  close(): void {
    for (const off of this.listeners.splice(0)) off();
    this.tracked.clear();
    this.registry.clear();
  }
}

type MetricValue = { value: number; labels: Record<string, string | number>; metricName?: string };

/**
 * Worker metrics, read from the worker runtime when scraped (the request path
 * only adds to plain numbers): restarts by reason and forwarded requests with
 * their latency per plugin, counted across versions; heap and event-loop
 * delay of each loaded worker.
 */
function registerWorkerMetrics(registry: Registry, workers: WorkerRuntime): void {
  const metric = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => MetricValue[]) => {
    registry.registerMetric({
      name,
      help,
      type,
      get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }),
      reset() {},
    } as never);
  };
  metric(
    'plugin_host_worker_restarts_total',
    'Worker deaths of worker plugins by reason (stall, memory, exception, exit, timeout)',
    'counter',
    () => [...workers.stats.restarts].flatMap(([plugin, m]) => [...m].map(([reason, n]) => ({ value: n, labels: { plugin, reason } }))),
  );
  metric('plugin_host_worker_heap_bytes', 'Heap used by each loaded worker plugin', 'gauge', () =>
    workers.loaded().map((v) => ({ value: v.details().heap_bytes, labels: { plugin: v.name, version: v.version } })),
  );
  metric(
    'plugin_host_worker_event_loop_lag_seconds',
    'Event-loop delay (p99 over the last heartbeat) of each loaded worker plugin',
    'gauge',
    () => workers.loaded().map((v) => ({ value: v.details().event_loop_lag_ms / 1000, labels: { plugin: v.name, version: v.version } })),
  );
  metric(
    'plugin_host_worker_request_duration_seconds',
    'Requests forwarded to worker plugins, from dispatch to answer',
    'histogram',
    () => {
      const out: MetricValue[] = [];
      for (const [plugin, f] of workers.stats.forwarded) {
        let cumulative = 0;
        LATENCY_BUCKETS_MS.forEach((le, i) => {
          cumulative += f.buckets[i] ?? 0;
          out.push({
            metricName: 'plugin_host_worker_request_duration_seconds_bucket',
            value: cumulative,
            labels: { plugin, le: le / 1000 },
          });
        });
        out.push({ metricName: 'plugin_host_worker_request_duration_seconds_bucket', value: f.count, labels: { plugin, le: '+Inf' } });
        out.push({ metricName: 'plugin_host_worker_request_duration_seconds_sum', value: f.sumMs / 1000, labels: { plugin } });
        out.push({ metricName: 'plugin_host_worker_request_duration_seconds_count', value: f.count, labels: { plugin } });
      }
      return out;
    },
  );
}

/** `GET /metrics` in the Prometheus text format. */
export async function metricsRoutes(app: FastifyInstance, o: { metrics: HostMetrics }): Promise<void> {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
      },
    },
    async (_req, reply) => {
      const body = await o.metrics.render();
      return reply.type(o.metrics.registry.contentType).send(body);
    },
  );
}
