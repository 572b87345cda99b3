/** A migration as `migrations.ts` declares it (written out here, so the two files do not import each other). */
interface Migration {
  id: number;
  name: string;
  sql: string;
}

/**
 * Scoped API tokens and the audit trail. A token is stored as the SHA-256 of
 * its secret (never the secret); revoking sets `revoked_at`, and the trigger
 * tells every node on `token_changes` so their caches drop it at once.
 * `audit_log` receives one row per control-plane write (and refusal) from the
 * API, and one per change of a plugin row made by another database session
 * than the server's (`application_name` not `plugin-host`: plain SQL, the
 * command line), with the database user as the actor.
 */
export const TOKENS_AND_AUDIT: Migration = {
  id: 9,
  name: 'tokens_and_audit',
  sql: `
CREATE TABLE IF NOT EXISTS api_tokens (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  hash         text NOT NULL UNIQUE,
  scopes       jsonb NOT NULL,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz
);

CREATE OR REPLACE FUNCTION notify_token_change() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('token_changes', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS api_tokens_notify ON api_tokens;
-- a use (last_used_at) is not a change any node must hear of
CREATE TRIGGER api_tokens_notify AFTER UPDATE OF name, scopes, expires_at, revoked_at OR DELETE ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION notify_token_change();

CREATE TABLE IF NOT EXISTS audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  token_id   text,
  node_id    text,
  via        text NOT NULL,
  action     text NOT NULL,
  plugin     text,
  target     text,
  outcome    text NOT NULL,
  status     integer,
  code       text,
  request_id text
);
CREATE INDEX IF NOT EXISTS audit_log_plugin_idx ON audit_log (plugin, id);
CREATE INDEX IF NOT EXISTS audit_log_token_idx ON audit_log (token_id, id);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);

CREATE OR REPLACE FUNCTION audit_plugin_sql_change() RETURNS trigger AS $$
DECLARE
  rec record;
BEGIN
  IF coalesce(current_setting('application_name', true), '') = 'plugin-host' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN rec := OLD; ELSE rec := NEW; END IF;
  INSERT INTO audit_log (actor, via, action, plugin, outcome)
    VALUES (session_user, 'sql', TG_OP || ' ' || TG_TABLE_NAME, rec.name, 'ok');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS plugins_audit_sql ON plugins;
CREATE TRIGGER plugins_audit_sql AFTER INSERT OR UPDATE OR DELETE ON plugins
  FOR EACH ROW EXECUTE FUNCTION audit_plugin_sql_change();
`,
};
