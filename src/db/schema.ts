import { bigserial, boolean, integer, jsonb, pgTable, primaryKey, text, timestamp, unique } from 'drizzle-orm/pg-core';
import type { JsonObject } from '../config/plugins/json.js';

/**
 * Desired state. Column names follow the original host so its clients and
 * operators feel at home; `artifact_hash` and `generation` are this host's.
 * Rows here are written by people, the admin API, the CLI and discovery; a
 * trigger NOTIFYs `plugin_changes` on every change.
 */
export const plugins = pgTable('plugins', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  version: text('version').notNull().default('0.0.0'),
  author: text('author').notNull().default(''),
  type: text('type').notNull().default('dynamic'),
  path: text('path'),
  binaryPath: text('binary_path'),
  sourcePath: text('source_path'),
  status: text('status').notNull().default('active'),
  /** Content hash of the artifact every node should serve; null until first compiled. */
  artifactHash: text('artifact_hash'),
  /** `inline` or `worker`; null: the host's default (`PLUGIN_ISOLATION`). */
  isolation: text('isolation'),
  /** Set by a rollback: every node serves this stored version, whatever its source says; a reload clears it. */
  pinnedHash: text('pinned_hash'),
  pinnedVersion: text('pinned_version'),
  /** Uploaded plugins: SHA-256 of the source archive in `plugin_sources` (null for a directory plugin). */
  sourceArchive: text('source_archive'),
  /** Bumped to force a reload even when the artifact is unchanged (admin reload). */
  generation: integer('generation').notNull().default(0),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const pluginEndpoints = pgTable(
  'plugin_endpoints',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    pluginId: text('plugin_id')
      .notNull()
      .references(() => plugins.id, { onDelete: 'cascade' }),
    method: text('method').notNull(),
    path: text('path').notNull(),
    handler: text('handler').notNull().default(''),
    type: text('type').notNull().default('REST'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [unique('plugin_endpoints_plugin_method_path').on(t.pluginId, t.method, t.path)],
);

/** Compiled bundles keyed by content hash, so a node without the source tree can load any published version. */
export const pluginArtifacts = pgTable('plugin_artifacts', {
  hash: text('hash').primaryKey(),
  pluginName: text('plugin_name').notNull(),
  version: text('version').notNull(),
  format: text('format').notNull(),
  bundle: text('bundle').notNull(),
  /** Hex SHA-256 of `bundle`, checked before a byte of it is evaluated. */
  sha256: text('sha256').notNull(),
  size: integer('size').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Per-plugin configuration, desired state beside the plugin's row: the values as written (secret
 * references unresolved) and a revision set by a trigger on every change, which NOTIFYs `plugin_changes`.
 */
export const pluginConfigs = pgTable('plugin_configs', {
  pluginName: text('plugin_name')
    .primaryKey()
    .references(() => plugins.name, { onDelete: 'cascade', onUpdate: 'cascade' }),
  config: jsonb('config').$type<JsonObject>().notNull(),
  /** Set by a trigger from one sequence on every insert and change: it only grows. */
  revision: integer('revision').notNull().default(0),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  updatedBy: text('updated_by').notNull().default(''),
});

/** Source archives of uploaded plugins (`tar.gz`, base64) by SHA-256 of the archive: any node can restore the source. */
export const pluginSources = pgTable('plugin_sources', {
  hash: text('hash').primaryKey(),
  pluginName: text('plugin_name').notNull(),
  archive: text('archive').notNull(),
  size: integer('size').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Plugins removed by name: discovery and watch mode do not register them again; an INSERT of the name forgets it. */
export const pluginRemovals = pgTable('plugin_removals', {
  name: text('name').primaryKey(),
  removedAt: timestamp('removed_at', { withTimezone: true }).notNull().defaultNow(),
  removedBy: text('removed_by').notNull().default(''),
});

/** Live server processes. No notify trigger: nodes never wake each other by writing here. */
export const hostNodes = pgTable('plugin_host_nodes', {
  nodeId: text('node_id').primaryKey(),
  address: text('address').notNull().default(''),
  pid: integer('pid').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Observed state: what each node serves per plugin. Written only by that node; no notify trigger. */
export const pluginNodeState = pgTable(
  'plugin_node_state',
  {
    nodeId: text('node_id').notNull(),
    pluginName: text('plugin_name').notNull(),
    state: text('state').notNull(),
    servingVersion: text('serving_version'),
    servingHash: text('serving_hash'),
    /** The runtime the serving version runs in on this node (`inline` or `worker`). */
    isolation: text('isolation'),
    /** Revision of the configuration the serving version runs with (0: none stored). */
    servingConfigRevision: integer('serving_config_revision'),
    /** Something the operator should know that is not an error (a source that differs from the pinned version). */
    note: text('note'),
    failedVersion: text('failed_version'),
    failedHash: text('failed_hash'),
    lastErrorCode: text('last_error_code'),
    lastError: text('last_error'),
    lastErrorAt: timestamp('last_error_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.nodeId, t.pluginName] })],
);

/** Every version a node published, once per plugin and hash: the history rollbacks and rollouts pick from. */
export const pluginVersions = pgTable(
  'plugin_versions',
  {
    pluginName: text('plugin_name').notNull(),
    hash: text('hash').notNull(),
    version: text('version').notNull(),
    sha256: text('sha256').notNull(),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull(),
    /** The node id (or `cli`) that published it. */
    publishedBy: text('published_by').notNull().default(''),
    /** What published it: discovery, register, reload, watch, source, rollout. */
    action: text('action').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.pluginName, t.hash] })],
);

/** The staged rollout of a plugin (its latest one): desired state, with the notify trigger. */
export const pluginRollouts = pgTable('plugin_rollouts', {
  id: text('id').primaryKey(),
  pluginId: text('plugin_id')
    .notNull()
    .references(() => plugins.id, { onDelete: 'cascade' }),
  name: text('name').notNull().unique(),
  candidateHash: text('candidate_hash').notNull(),
  candidateVersion: text('candidate_version').notNull(),
  /** What every other node serves meanwhile (the pinned or published version when the rollout started). */
  previousHash: text('previous_hash').notNull(),
  previousVersion: text('previous_version').notNull(),
  /** The candidate was compiled from the current source (a promotion then unpins; an abort pins the previous). */
  fromSource: boolean('from_source').notNull().default(false),
  nodes: jsonb('nodes').$type<string[]>(),
  percent: integer('percent'),
  /** `canary`, `promoted` or `aborted`. */
  state: text('state').notNull(),
  reason: text('reason'),
  autoPromote: boolean('auto_promote').notNull().default(false),
  bakeMs: integer('bake_ms').notNull(),
  startedBy: text('started_by').notNull().default(''),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  endedAt: timestamp('ended_at', { withTimezone: true }),
});

export const schema = {
  plugins,
  pluginEndpoints,
  pluginArtifacts,
  pluginConfigs,
  pluginSources,
  pluginRemovals,
  hostNodes,
  pluginNodeState,
  pluginVersions,
  pluginRollouts,
};
export type Schema = typeof schema;
export type PluginRow = typeof plugins.$inferSelect;
export type NewPluginRow = typeof plugins.$inferInsert;
export type EndpointRow = typeof pluginEndpoints.$inferSelect;
export type NodeStateRow = typeof pluginNodeState.$inferSelect;
export type RemovalRow = typeof pluginRemovals.$inferSelect;
export type PluginConfigRow = typeof pluginConfigs.$inferSelect;
export type VersionRow = typeof pluginVersions.$inferSelect;
export type RolloutRow = typeof pluginRollouts.$inferSelect;
