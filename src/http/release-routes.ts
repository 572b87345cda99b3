import type { FastifyInstance } from 'fastify';
import type { PluginRow } from '../db/index.js';
import { assertPluginName } from '../model/index.js';
import type { Releases, RolloutRequest, VersionRef } from '../releases/index.js';

const NAME = { type: 'string', maxLength: 64 } as const;
const HASH = { type: 'string', pattern: '^[0-9a-f]{16,128}$', description: 'Artifact hash of a stored version' } as const;
const VERSION = { type: 'string', minLength: 1, maxLength: 64, description: 'Semver version of a stored version' } as const;

/** `GET /plugins/:name/versions`: the version history, readable without the admin token like the rest of `/plugins`. */
export async function releaseReadRoutes(app: FastifyInstance, o: { releases: Releases; liveWithinMs: number }): Promise<void> {
  app.get(
    '/plugins/:name/versions',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Versions of a plugin, newest first',
        description:
          'Every version a node published (from source, registration, reload, watch or a rollout), kept for the last VERSIONS_KEPT plus any published, pinned, in a rollout or serving; with the live nodes serving each now.',
        params: { type: 'object', properties: { name: NAME }, required: ['name'] },
      },
    },
    async (req) => {
      const { name } = req.params as { name: string };
      assertPluginName(name);
      return o.releases.versions(name, o.liveWithinMs);
    },
  );
}

export interface ReleaseAdminDeps {
  releases: Releases;
  nodeId: string;
  /** The admin routes' shared options (body limit, tags, auth, params, responses) for a summary and description. */
  common(summary: string, description: string): { bodyLimit: number; schema: Record<string, unknown> };
  settle(name: string): Promise<boolean>;
  stateOf(row: PluginRow, extra: Record<string, unknown>): Promise<Record<string, unknown>>;
  row(name: string): Promise<PluginRow>;
}

/** Rollback, and the staged rollout's start, promotion and abort. Registered inside the admin routes (token checked). */
export function releaseAdminRoutes(app: FastifyInstance, d: ReleaseAdminDeps): void {
  const by = `admin API on ${d.nodeId}`;
  const withBody = (summary: string, description: string, body: Record<string, unknown>) => {
    const c = d.common(summary, description);
    return { ...c, schema: { ...c.schema, body } };
  };

  app.post(
    '/plugins/:name/rollback',
    withBody(
      'Pin a plugin to a stored version',
      'Every node serves the stored version (verified against its SHA-256) whether or not it has the source, across restarts, discovery and watch mode; a source that differs is reported per node. POST /plugins/:name/reload unpins. 409 while a rollout is in its canary stage.',
      {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: { version: VERSION, hash: HASH },
      },
    ),
    async (req) => {
      const { name } = req.params as { name: string };
      const row = await d.releases.rollback(name, req.body as VersionRef, by);
      const settled = await d.settle(name);
      return d.stateOf(row, { action: 'rollback', changed: true, settled });
    },
  );

  app.post(
    '/plugins/:name/rollout',
    withBody(
      'Start a staged rollout',
      'The candidate (a stored "version" or "hash"; without either, the current source compiled, proven and published here) goes to the named "nodes" or to "percent" of the nodes (a stable hash of node id and plugin); every other node keeps the current version. Canary nodes run its health check and watch its 5xx ratio for ROLLOUT_BAKE_MS and abort it by themselves on a fault; "autoPromote" promotes it after a clean bake. One rollout at a time per plugin (409).',
      {
        type: 'object',
        additionalProperties: false,
        properties: {
          nodes: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 200 } },
          percent: { type: 'integer', minimum: 1, maximum: 100 },
          version: VERSION,
          hash: HASH,
          autoPromote: { type: 'boolean' },
          bakeMs: { type: 'integer', minimum: 0, maximum: 604_800_000 },
        },
      },
    ),
    async (req) => {
      const { name } = req.params as { name: string };
      await d.releases.startRollout(name, req.body as RolloutRequest, by);
      const settled = await d.settle(name);
      return d.stateOf(await d.row(name), { action: 'rollout', changed: true, settled });
    },
  );

  app.post(
    '/plugins/:name/rollout/promote',
    d.common('Promote the candidate of a rollout', 'Every node serves the candidate. 409 when no rollout is in its canary stage.'),
    async (req) => {
      const { name } = req.params as { name: string };
      await d.releases.promote(name, by);
      const settled = await d.settle(name);
      return d.stateOf(await d.row(name), { action: 'promote', changed: true, settled });
    },
  );

  app.post(
    '/plugins/:name/rollout/abort',
    d.common(
      'Abort a rollout',
      'The canary nodes go back to the previous version (a candidate compiled from the source leaves the previous version pinned). 409 when no rollout is in its canary stage.',
    ),
    async (req) => {
      const { name } = req.params as { name: string };
      await d.releases.abort(name, by);
      const settled = await d.settle(name);
      return d.stateOf(await d.row(name), { action: 'abort', changed: true, settled });
    },
  );
}
