import type { FastifyInstance } from 'fastify';
import type { DiscoveryError } from '../admin/index.js';
import { redactJson } from '../config/plugins/index.js';
import type { PluginRepository, PluginWithEndpoints } from '../db/index.js';
import { describeError, type HostError, hostProblem, pluginNotFound, problemOf } from '../errors/index.js';
import type { PluginManager } from '../manager/index.js';
import { assertPluginName, PLUGIN_STATUSES } from '../model/index.js';
import { pluginView, unregisteredView } from './plugin-view.js';
import { sendProblem } from './problem.js';

export interface PluginsRoutesOptions {
  repo: PluginRepository;
  manager: PluginManager;
  /** Directories discovery could not register, shown beside the registered plugins. */
  discoveryErrors: ReadonlyMap<string, DiscoveryError>;
  nodeId: string;
  hookTimeoutMs: number;
  /** Nodes whose heartbeat is older than this are not shown. */
  liveWithinMs: number;
}

const nameParam = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 64 } },
  required: ['name'],
} as const;

/**
 * Read routes: `GET /plugins`, `GET /plugins/:name`, `GET /plugins/:name/health`.
 * When the database is unreachable they answer from the rows this node last read, with
 * `stale: true` and an `x-plugin-host-stale` header, instead of failing.
 */
export async function pluginsRoutes(app: FastifyInstance, o: PluginsRoutesOptions): Promise<void> {
  async function rowsOrStale(status?: string): Promise<{ rows: PluginWithEndpoints[]; stale: boolean }> {
    try {
      const rows = await o.repo.list(status === undefined ? {} : { status });
      return { rows, stale: false };
    } catch (err) {
      app.log.warn({ err: describeError(err) }, 'database unavailable; answering from last known state');
      // the rows this node last read (its reconciles read every row), not only what this route listed before
      return { rows: o.repo.knownRows(status === undefined ? {} : { status }), stale: true };
    }
  }

  /** The plugin's health check on this node (bounded), or null when nothing serves here. */
  async function healthOf(name: string): Promise<Record<string, unknown> | null> {
    const p = o.manager.serving(name);
    if (p === undefined) return null;
    const checked_at = new Date().toISOString();
    try {
      const r = await p.health(Math.min(o.hookTimeoutMs, 2000));
      return { ok: r.ok, detail: redactJson(r.detail ?? null), version: p.version, checked_at };
    } catch (err) {
      const e = err as HostError;
      return { ok: false, detail: e.message, code: e.code ?? 'PH_ERR_HEALTH_FAILED', version: p.version, checked_at };
    }
  }

  app.get(
    '/plugins',
    {
      schema: {
        tags: ['plugins'],
        summary: 'List plugins (desired state plus what this node serves)',
        description:
          'With `removed=true`: the plugins removed by name (`DELETE /plugins/:name`, the CLI or SQL) and not registered again, which discovery and watch mode leave alone.',
        querystring: {
          type: 'object',
          properties: {
            status: { type: 'string', enum: [...PLUGIN_STATUSES] },
            removed: { type: 'boolean', description: 'List removed plugins instead' },
          },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const { status, removed } = req.query as { status?: string; removed?: boolean };
      if (removed === true) {
        return (await o.repo.removals()).map((r) => ({
          name: r.name,
          registered: false,
          removed: true,
          removed_at: r.removedAt.toISOString(),
          removed_by: r.removedBy,
        }));
      }
      const { rows, stale } = await rowsOrStale(status);
      if (stale) reply.header('x-plugin-host-stale', '1');
      const out: Record<string, unknown>[] = rows.map((r) => ({
        ...pluginView(r, o.manager.snapshot(r.name), undefined, o.nodeId),
        stale,
      }));
      if (status === undefined) {
        for (const [name, e] of o.discoveryErrors) {
          if (rows.some((r) => r.name === name)) continue;
          out.push(unregisteredView(name, e, stale));
        }
      }
      return out;
    },
  );

  app.get(
    '/plugins/:name',
    { schema: { tags: ['plugins'], summary: 'One plugin, with every live node’s view', params: nameParam } },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      assertPluginName(name);
      let row: PluginWithEndpoints | undefined;
      let stale = false;
      let nodes: Awaited<ReturnType<PluginRepository['nodes']['views']>> | undefined;
      try {
        row = await o.repo.getByName(name);
        nodes = row === undefined ? undefined : await o.repo.nodes.views(name, o.liveWithinMs);
      } catch {
        stale = true;
        row = o.repo.knownRow(name);
        reply.header('x-plugin-host-stale', '1');
      }
      if (row === undefined) {
        const e = o.discoveryErrors.get(name);
        if (e !== undefined) return unregisteredView(name, e, stale);
        return sendProblem(reply, hostProblem(pluginNotFound(name)));
      }
      return { ...pluginView(row, o.manager.snapshot(name), nodes, o.nodeId), health: await healthOf(name), stale };
    },
  );

  app.get(
    '/plugins/:name/health',
    { schema: { tags: ['plugins'], summary: 'Run the plugin’s health check on this node', params: nameParam } },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      assertPluginName(name);
      const p = o.manager.serving(name);
      if (p === undefined) {
        const snap = o.manager.snapshot(name);
        if (snap === undefined)
          return sendProblem(reply, problemOf('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not known on this node`));
        return sendProblem(
          reply,
          problemOf('PH_ERR_PLUGIN_NOT_SERVING', `plugin "${name}" is ${snap.state} on this node`, { state: snap.state }),
        );
      }
      try {
        const r = await p.health(o.hookTimeoutMs);
        const body = { name, version: p.version, ok: r.ok, detail: redactJson(r.detail ?? null), checked_at: new Date().toISOString() };
        return reply.code(r.ok ? 200 : 503).send(body);
      } catch (err) {
        const e = err as HostError;
        return sendProblem(reply, problemOf('PH_ERR_HEALTH_FAILED', e.message, { ok: false, cause_code: e.code }));
      }
    },
  );
}
