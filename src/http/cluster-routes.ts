import type { FastifyInstance } from 'fastify';
import type { DiscoveryError } from '../admin/index.js';
import { clusterView } from '../console/cluster.js';
import type { ErrorHistory } from '../console/error-history.js';
import type { PluginRepository } from '../db/index.js';
import { problemOf } from '../errors/index.js';
import type { PluginManager } from '../manager/index.js';
import { assertPluginName } from '../model/index.js';
import { sendProblem } from './problem.js';

export interface ClusterRoutesOptions {
  repo: PluginRepository;
  manager: PluginManager;
  history: ErrorHistory;
  /** Directories discovery could not register. */
  discoveryErrors: ReadonlyMap<string, DiscoveryError>;
  nodeId: string;
  /** Nodes whose heartbeat is older than this are not shown. */
  liveWithinMs: number;
}

const recorded = {
  type: ['object', 'null'],
  properties: { code: { type: ['string', 'null'] }, message: { type: 'string' }, at: { type: ['string', 'null'] } },
} as const;

const nodeState = {
  type: 'object',
  properties: {
    node_id: { type: 'string' },
    state: { type: 'string' },
    serving_version: { type: ['string', 'null'] },
    serving_hash: { type: ['string', 'null'] },
    serving_config_revision: {
      type: ['integer', 'null'],
      description: 'Configuration revision the serving version runs with (0: none stored)',
    },
    failed_version: { type: ['string', 'null'] },
    last_error: recorded,
    updated_at: { type: ['string', 'null'], description: 'When the node recorded it (null for this node: read live)' },
  },
} as const;

/**
 * Read routes of the console, open like the other reads and carrying no secret:
 * `GET /cluster`, every live node's state of every plugin in one database read (instead of
 * one `GET /plugins/:name` per plugin), and `GET /plugins/:name/errors`, the errors this node
 * has seen for a plugin since it started.
 */
export async function clusterRoutes(app: FastifyInstance, o: ClusterRoutesOptions): Promise<void> {
  app.get(
    '/cluster',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Every live node and the state of every plugin on each',
        description:
          'One read of the observed state. This node’s entries are read from its manager (current even before they are recorded); `stale: true` when the database is unreachable (only this node is shown).',
        response: {
          200: {
            type: 'object',
            properties: {
              node_id: { type: 'string' },
              stale: { type: 'boolean' },
              nodes: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    node_id: { type: 'string' },
                    address: { type: 'string' },
                    heartbeat_at: { type: ['string', 'null'] },
                    self: { type: 'boolean' },
                  },
                },
              },
              plugins: { type: 'object', additionalProperties: { type: 'array', items: nodeState } },
            },
          },
        },
      },
    },
    async (_req, reply) => {
      const view = await clusterView({
        repo: o.repo,
        manager: o.manager,
        nodeId: o.nodeId,
        liveWithinMs: o.liveWithinMs,
        onStale: (err) => app.log.warn({ err }, 'database unavailable; cluster view shows this node only'),
      });
      if (view.stale) reply.header('x-plugin-host-stale', '1');
      return view;
    },
  );

  app.get(
    '/plugins/:name/errors',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Errors this node has seen for a plugin since it started, newest first',
        params: { type: 'object', properties: { name: { type: 'string', maxLength: 64 } }, required: ['name'] },
        response: {
          200: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              node_id: { type: 'string' },
              errors: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    code: { type: 'string' },
                    message: { type: 'string' },
                    at: { type: 'string', description: 'First seen' },
                    last_at: { type: 'string', description: 'Last seen, when the same error repeated' },
                    version: { type: ['string', 'null'] },
                    count: { type: 'integer' },
                  },
                },
              },
            },
          },
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      assertPluginName(name);
      const errors = o.history.of(name);
      if (errors.length === 0 && o.manager.snapshot(name) === undefined && !o.discoveryErrors.has(name)) {
        return sendProblem(reply, problemOf('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not known on this node`));
      }
      return { name, node_id: o.nodeId, errors };
    },
  );
}
