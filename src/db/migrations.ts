import { createHash } from 'node:crypto';
import { HostError } from '../errors/index.js';
import { TOKENS_AND_AUDIT } from './migration-tokens.js';
import type { Database } from './types.js';

/**
 * Versioned SQL migrations, applied in order at start, each recorded with the
 * hash of its text. They run in one transaction under an advisory lock so that
 * several servers starting together migrate exactly once. A recorded migration
 * whose text changed is an error: migrations are append-only.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'plugins_and_endpoints',
    sql: `
CREATE TABLE IF NOT EXISTS plugins (
  id            text PRIMARY KEY,
  name          text NOT NULL UNIQUE,
  description   text NOT NULL DEFAULT '',
  version       text NOT NULL DEFAULT '0.0.0',
  author        text NOT NULL DEFAULT '',
  type          text NOT NULL DEFAULT 'dynamic',
  path          text,
  binary_path   text,
  source_path   text,
  status        text NOT NULL DEFAULT 'active',
  artifact_hash text,
  generation    integer NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS plugins_status_idx ON plugins (status);

CREATE TABLE IF NOT EXISTS plugin_endpoints (
  id         bigserial PRIMARY KEY,
  plugin_id  text NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
  method     text NOT NULL,
  path       text NOT NULL,
  handler    text NOT NULL DEFAULT '',
  type       text NOT NULL DEFAULT 'REST',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT plugin_endpoints_plugin_method_path UNIQUE (plugin_id, method, path)
);
`,
  },
  {
    id: 2,
    name: 'notify_plugin_change',
    // The payload names the row and never carries it: NOTIFY payloads are
    // capped near 8 KB and a larger one aborts the writer's transaction.
    sql: `
CREATE OR REPLACE FUNCTION notify_plugin_change() RETURNS trigger AS $$
DECLARE
  rec record;
BEGIN
  IF TG_OP = 'DELETE' THEN rec := OLD; ELSE rec := NEW; END IF;
  PERFORM pg_notify('plugin_changes', json_build_object(
    'operation', TG_OP,
    'table', TG_TABLE_NAME,
    'id', rec.id,
    'name', rec.name,
    'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  )::text);
  IF TG_OP = 'UPDATE' AND OLD.name IS DISTINCT FROM NEW.name THEN
    PERFORM pg_notify('plugin_changes', json_build_object(
      'operation', 'DELETE', 'table', TG_TABLE_NAME, 'id', OLD.id, 'name', OLD.name,
      'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION plugins_touch_updated_at() RETURNS trigger AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS plugins_touch_updated_at ON plugins;
CREATE TRIGGER plugins_touch_updated_at BEFORE UPDATE ON plugins
  FOR EACH ROW EXECUTE FUNCTION plugins_touch_updated_at();

DROP TRIGGER IF EXISTS plugins_notify_insert ON plugins;
DROP TRIGGER IF EXISTS plugins_notify_update ON plugins;
DROP TRIGGER IF EXISTS plugins_notify_delete ON plugins;
CREATE TRIGGER plugins_notify_insert AFTER INSERT ON plugins FOR EACH ROW EXECUTE FUNCTION notify_plugin_change();
CREATE TRIGGER plugins_notify_update AFTER UPDATE ON plugins FOR EACH ROW EXECUTE FUNCTION notify_plugin_change();
CREATE TRIGGER plugins_notify_delete AFTER DELETE ON plugins FOR EACH ROW EXECUTE FUNCTION notify_plugin_change();
`,
  },
  {
    id: 3,
    name: 'artifacts_nodes_observed_state',
    sql: `
CREATE TABLE IF NOT EXISTS plugin_artifacts (
  hash        text PRIMARY KEY,
  plugin_name text NOT NULL,
  version     text NOT NULL,
  format      text NOT NULL,
  bundle      text NOT NULL,
  size        integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS plugin_host_nodes (
  node_id      text PRIMARY KEY,
  address      text NOT NULL DEFAULT '',
  pid          integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS plugin_node_state (
  node_id         text NOT NULL REFERENCES plugin_host_nodes(node_id) ON DELETE CASCADE,
  plugin_name     text NOT NULL,
  state           text NOT NULL,
  serving_version text,
  serving_hash    text,
  failed_version  text,
  failed_hash     text,
  last_error_code text,
  last_error      text,
  last_error_at   timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, plugin_name)
);
CREATE INDEX IF NOT EXISTS plugin_node_state_plugin_idx ON plugin_node_state (plugin_name);
`,
  },
  {
    id: 4,
    name: 'removals_and_artifact_digests',
    // A removal is remembered by name, so discovery and watch mode do not bring a removed plugin back; any
    // INSERT of the name (an explicit registration, whoever makes it) forgets it. Every bundle gets its
    // SHA-256, checked before a byte of it is evaluated.
    sql: `
CREATE TABLE IF NOT EXISTS plugin_removals (
  name       text PRIMARY KEY,
  removed_at timestamptz NOT NULL DEFAULT now(),
  removed_by text NOT NULL DEFAULT ''
);

CREATE OR REPLACE FUNCTION plugins_remember_removal() RETURNS trigger AS $$
BEGIN
  INSERT INTO plugin_removals (name, removed_at, removed_by)
    VALUES (OLD.name, now(), coalesce(nullif(current_setting('plugin_host.removed_by', true), ''), 'sql'))
    ON CONFLICT (name) DO UPDATE SET removed_at = EXCLUDED.removed_at, removed_by = EXCLUDED.removed_by;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION plugins_forget_removal() RETURNS trigger AS $$
BEGIN
  DELETE FROM plugin_removals WHERE name = NEW.name;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS plugins_remember_removal ON plugins;
DROP TRIGGER IF EXISTS plugins_forget_removal ON plugins;
CREATE TRIGGER plugins_remember_removal AFTER DELETE ON plugins FOR EACH ROW EXECUTE FUNCTION plugins_remember_removal();
CREATE TRIGGER plugins_forget_removal AFTER INSERT ON plugins FOR EACH ROW EXECUTE FUNCTION plugins_forget_removal();

ALTER TABLE plugin_artifacts ADD COLUMN IF NOT EXISTS sha256 text;
UPDATE plugin_artifacts SET sha256 = encode(sha256(convert_to(bundle, 'UTF8')), 'hex') WHERE sha256 IS NULL;
ALTER TABLE plugin_artifacts ALTER COLUMN sha256 SET NOT NULL;
CREATE INDEX IF NOT EXISTS plugin_host_nodes_heartbeat_idx ON plugin_host_nodes (heartbeat_at);
`,
  },
  {
    id: 5,
    name: 'isolation',
    // Null means the host's default (PLUGIN_ISOLATION); each node records the mode in effect.
    sql: `
ALTER TABLE plugins ADD COLUMN IF NOT EXISTS isolation text;
ALTER TABLE plugin_node_state ADD COLUMN IF NOT EXISTS isolation text;
`,
  },
  {
    id: 6,
    name: 'plugin_configs',
    // Desired state like the plugins row: values as written (secret references unresolved), and a
    // revision every node compares with what it serves. Revisions come from one sequence and are set by
    // the trigger on every insert and every change of `config` (whatever a writer puts there), so they
    // only grow, even across a delete and a new insert, and a hand-written UPDATE gets one as well. The notification has the payload of
    // migration 2 and names the plugin, so every node reconciles it.
    sql: `
CREATE SEQUENCE IF NOT EXISTS plugin_config_revisions AS integer;

CREATE TABLE IF NOT EXISTS plugin_configs (
  plugin_name text PRIMARY KEY REFERENCES plugins(name) ON UPDATE CASCADE ON DELETE CASCADE,
  config      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
  revision    integer NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL DEFAULT ''
);

CREATE OR REPLACE FUNCTION plugin_configs_revise() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.config IS DISTINCT FROM OLD.config THEN
    NEW.revision := nextval('plugin_config_revisions');
    NEW.updated_at := now();
  ELSE
    NEW.revision := OLD.revision;
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION notify_plugin_config_change() RETURNS trigger AS $$
DECLARE
  rec record;
  plugin_id text;
BEGIN
  IF TG_OP = 'DELETE' THEN rec := OLD; ELSE rec := NEW; END IF;
  SELECT id INTO plugin_id FROM plugins WHERE name = rec.plugin_name;
  PERFORM pg_notify('plugin_changes', json_build_object(
    'operation', TG_OP,
    'table', TG_TABLE_NAME,
    'id', coalesce(plugin_id, ''),
    'name', rec.plugin_name,
    'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  )::text);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS plugin_configs_revise ON plugin_configs;
DROP TRIGGER IF EXISTS plugin_configs_notify ON plugin_configs;
CREATE TRIGGER plugin_configs_revise BEFORE INSERT OR UPDATE ON plugin_configs
  FOR EACH ROW EXECUTE FUNCTION plugin_configs_revise();
CREATE TRIGGER plugin_configs_notify AFTER INSERT OR UPDATE OR DELETE ON plugin_configs
  FOR EACH ROW EXECUTE FUNCTION notify_plugin_config_change();

ALTER TABLE plugin_node_state ADD COLUMN IF NOT EXISTS serving_config_revision integer;
`,
  },
  {
    id: 7,
    name: 'versions_pins_rollouts',
    // Every published version, once per plugin and hash (the history, no trigger: it is not desired state).
    // A pin and a staged rollout are desired state: the pin is a column of the plugin's row, the rollout a
    // row of its own (one per plugin, replaced by the next) with the same notify trigger as `plugins`.
    sql: `
CREATE TABLE IF NOT EXISTS plugin_versions (
  plugin_name  text NOT NULL,
  hash         text NOT NULL,
  version      text NOT NULL,
  sha256       text NOT NULL,
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
  published_by text NOT NULL DEFAULT '',
  action       text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (plugin_name, hash)
);
CREATE INDEX IF NOT EXISTS plugin_versions_newest_idx ON plugin_versions (plugin_name, created_at DESC);

ALTER TABLE plugins ADD COLUMN IF NOT EXISTS pinned_hash text;
ALTER TABLE plugins ADD COLUMN IF NOT EXISTS pinned_version text;
ALTER TABLE plugin_node_state ADD COLUMN IF NOT EXISTS note text;

CREATE TABLE IF NOT EXISTS plugin_rollouts (
  id                text PRIMARY KEY,
  plugin_id         text NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
  name              text NOT NULL UNIQUE,
  candidate_hash    text NOT NULL,
  candidate_version text NOT NULL,
  previous_hash     text NOT NULL,
  previous_version  text NOT NULL,
  from_source       boolean NOT NULL DEFAULT false,
  nodes             jsonb,
  percent           integer,
  state             text NOT NULL,
  reason            text,
  auto_promote      boolean NOT NULL DEFAULT false,
  bake_ms           integer NOT NULL,
  started_by        text NOT NULL DEFAULT '',
  started_at        timestamptz NOT NULL DEFAULT now(),
  ended_at          timestamptz
);

DROP TRIGGER IF EXISTS plugin_rollouts_notify ON plugin_rollouts;
CREATE TRIGGER plugin_rollouts_notify AFTER INSERT OR UPDATE OR DELETE ON plugin_rollouts
  FOR EACH ROW EXECUTE FUNCTION notify_plugin_change();
`,
  },
  {
    id: 8,
    name: 'plugin_sources',
    // Uploaded plugins: the source archive (tar.gz, base64) by its SHA-256, so any node can unpack and
    // recompile it; plugins.source_archive names the archive of the version the row describes.
    sql: `
CREATE TABLE IF NOT EXISTS plugin_sources (
  hash        text PRIMARY KEY,
  plugin_name text NOT NULL,
  archive     text NOT NULL,
  size        integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE plugins ADD COLUMN IF NOT EXISTS source_archive text;
`,
  },
  TOKENS_AND_AUDIT,
];

/** Arbitrary but fixed key for pg_advisory_xact_lock: "plugin-host" migrations. */
const MIGRATION_LOCK_KEY = 7_291_046_331;

function hashOf(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** Applies pending migrations; returns the ids applied by this call (empty when up to date). */
export async function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  try {
    return await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
      await tx.exec(`
CREATE TABLE IF NOT EXISTS plugin_host_migrations (
  id         integer PRIMARY KEY,
  name       text NOT NULL,
  hash       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`);
      const rows = await tx.query<{ id: number; hash: string }>('SELECT id, hash FROM plugin_host_migrations');
      const applied = new Map(rows.map((r) => [Number(r.id), r.hash]));
      const done: number[] = [];
      for (const m of migrations) {
        const hash = hashOf(m.sql);
        const seen = applied.get(m.id);
        if (seen !== undefined) {
          if (seen !== hash) {
            throw new HostError('PH_ERR_MIGRATION_FAILED', `migration ${m.id} (${m.name}) changed after it was applied`);
          }
          continue;
        }
        await tx.exec(m.sql);
        await tx.query('INSERT INTO plugin_host_migrations (id, name, hash) VALUES ($1, $2, $3)', [m.id, m.name, hash]);
        done.push(m.id);
      }
      return done;
    });
  } catch (err) {
    if (err instanceof HostError) throw err;
    throw new HostError('PH_ERR_MIGRATION_FAILED', `migrations failed: ${(err as Error).message}`, { cause: err });
  }
}
