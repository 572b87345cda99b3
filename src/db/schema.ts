import { bigserial, integer, pgTable, primaryKey, text, timestamp, unique } from 'drizzle-orm/pg-core';

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
    failedVersion: text('failed_version'),
    failedHash: text('failed_hash'),
    lastErrorCode: text('last_error_code'),
    lastError: text('last_error'),
    lastErrorAt: timestamp('last_error_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.nodeId, t.pluginName] })],
);

export const schema = { plugins, pluginEndpoints, pluginArtifacts, pluginSources, pluginRemovals, hostNodes, pluginNodeState };
export type Schema = typeof schema;
export type PluginRow = typeof plugins.$inferSelect;
export type NewPluginRow = typeof plugins.$inferInsert;
export type EndpointRow = typeof pluginEndpoints.$inferSelect;
export type NodeStateRow = typeof pluginNodeState.$inferSelect;
export type RemovalRow = typeof pluginRemovals.$inferSelect;
