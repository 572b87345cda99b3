// The shapes of the host's API answers, defined once: the server builds them (`http/plugin-view.ts`), the CLI
// reads them through a server (`cli/control/http-control.ts`) and the console renders them (`console/assets/`).
// Types only, and no imports: the console's browser build type-checks this file too.

export interface RecordedError {
  code: string | null;
  message: string;
  at: string | null;
  version?: string | null;
}

export interface Endpoint {
  method: string;
  path: string;
}

/** One entry of `GET /plugins`: a registered plugin, or a directory that could not be registered (`registered: false`). */
export interface PluginItem {
  name: string;
  registered: boolean;
  status: string | null;
  state: string;
  version?: string;
  description?: string;
  author?: string;
  type?: string;
  generation?: number;
  artifact_hash?: string | null;
  source_path?: string | null;
  serving?: { version: string; hash: string; loaded_at: string; from?: string; isolation?: string; config_revision?: number } | null;
  last_error: RecordedError | null;
  endpoints: Endpoint[];
  updated_at?: string;
  stale?: boolean;
  /** Fields later versions of the API add (isolation, configuration, rollout) are read by name. */
  [field: string]: unknown;
}

export interface NodePluginState {
  node_id: string;
  state: string;
  serving_version: string | null;
  serving_hash: string | null;
  failed_version: string | null;
  last_error: RecordedError | null;
  updated_at: string | null;
}

export interface ClusterNode {
  node_id: string;
  address: string;
  heartbeat_at: string | null;
  self: boolean;
}

export interface ClusterView {
  node_id: string;
  stale: boolean;
  nodes: ClusterNode[];
  plugins: Record<string, NodePluginState[]>;
}

export interface PluginDetail extends PluginItem {
  nodes?: (NodePluginState & { address: string; heartbeat_at: string })[];
  health?: { ok: boolean; detail: unknown; version: string; checked_at: string; code?: string } | null;
}

export interface HistoryEntry {
  code: string;
  message: string;
  at: string;
  last_at: string;
  version: string | null;
  count: number;
}

export interface ActionResult extends PluginItem {
  action: string;
  changed: boolean;
  settled: boolean;
}

/** One entry of `GET /plugins/:name/versions` (newest first). */
export interface VersionEntry {
  version: string;
  hash: string;
  sha256: string;
  created_at: string;
  published_by: string;
  action: string;
  /** The metadata recorded when it was published (its configuration schema among it). */
  metadata: Record<string, unknown>;
  /** Live nodes serving this version now. */
  nodes: string[];
}

/** The `rollout` field of a plugin (absent or null: none was ever started). */
export interface RolloutInfo {
  candidate_version?: string;
  candidate_hash?: string;
  previous_version?: string | null;
  state?: string;
  nodes?: string[] | null;
  percent?: number | null;
  reason?: string | null;
}

/** `GET /plugins/:name/config`: stored values (secret references as written), schema, revision. */
export interface ConfigState {
  name: string;
  config: unknown;
  effective: unknown;
  errors: { pointer: string; message: string }[];
  schema: unknown;
  schema_error: { code: string; message: string } | null;
  revision: number;
  updated_at: string | null;
  updated_by: string;
}

export interface ConfigChange extends ConfigState {
  changed: boolean;
  settled: boolean;
  plugin?: { state: string; last_error: RecordedError | null };
}
