// Scoped tokens on an in-process host, on both databases: a publish token uploads its plugin and is refused
// (403, nothing changed) everywhere else; a read token reads a configuration and cannot disable; the secret is
// shown once, stored as its SHA-256 and found nowhere else (answers, listing, audit, logs, any row of any table);
// revoked and expired tokens are refused; the audit trail names who did what; every guarded route has a scope.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { ROUTE_SCOPES } from '../src/tokens/index.js';
import { packDir } from './support/archives.js';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const ADMIN = 'tokens-test-admin-token';

test('TOKEN_CACHE_MS and AUDIT_RETENTION_DAYS are checked at start', () => {
  const plugins = tempDir('ph-tok-cfg-');
  try {
    const config = loadConfig({ PLUGINS_DIR: plugins.dir });
    assert.deepEqual([config.tokenCacheMs, config.auditRetentionDays], [2000, 90]);
    for (const [name, value] of [
      ['TOKEN_CACHE_MS', '60001'],
      ['TOKEN_CACHE_MS', 'x'],
      ['AUDIT_RETENTION_DAYS', '0'],
    ]) {
      assert.throws(() => loadConfig({ PLUGINS_DIR: plugins.dir, [name as string]: value }), { code: 'PH_ERR_CONFIG_INVALID' });
    }
  } finally {
    plugins.cleanup();
  }
});

onEachDatabase('scoped tokens', (db) => {
  let h: TestHost;
  const plugins = pluginsDirWithPowertable();
  const work = tempDir('ph-tok-work-');
  /** Every secret this suite saw: none may appear anywhere but in the answer that created it. */
  const secrets: string[] = [ADMIN];

  before(async () => {
    h = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: ADMIN } });
  });
  after(async () => {
    await h?.close();
    plugins.cleanup();
    work.cleanup();
  });

  const call = (method: string, route: string, token: string | undefined, body?: unknown, headers: Record<string, string> = {}) =>
    getJson(`${h.adminUrl}${route}`, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined || Buffer.isBuffer(body) ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    });
  const create = async (name: string, scopes: string[], extra: Record<string, unknown> = {}) => {
    const r = await call('POST', '/tokens', ADMIN, { name, scopes, ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    secrets.push(r.body.token);
    return r.body as { id: string; token: string };
  };
  const upload = async (name: string, token: string) => {
    const dir = writePlugin(work.dir, name, pluginSource({ name, version: '1.0.0' }));
    return call('PUT', `/plugins/${name}/source`, token, await packDir(dir), { 'content-type': 'application/gzip' });
  };
  const refused = (r: { status: number; body: any }, status: number, code: string, scope?: string) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.code, code);
    if (scope !== undefined) assert.equal(r.body.details?.needed_scope, scope, r.body.detail);
  };
  const rows = (sql: string) => sqlByHand(h, db.url, sql) as Promise<Array<Record<string, unknown>>>;
  const statusOf = async (name: string) => (await getJson(`${h.url}/plugins/${name}`)).body.status;

  test('POST /tokens answers the secret once (ph_ prefix, 256 bits); the database keeps its SHA-256; GET /tokens shows no secret', async () => {
    const { id, token } = await create('ci publisher', ['publish:upt']);
    assert.match(token, /^ph_[A-Za-z0-9_-]{43}$/);
    assert.match(id, /^tok_[0-9a-f]{24}$/);
    const [row] = await rows(`SELECT hash FROM api_tokens WHERE id = '${id}'`);
    assert.equal(row?.hash, createHash('sha256').update(token).digest('hex'));
    const list = await call('GET', '/tokens', ADMIN);
    assert.equal(list.status, 200);
    const mine = (list.body as Array<Record<string, unknown>>).find((t) => t.id === id);
    assert.deepEqual(Object.keys(mine ?? {}).sort(), [
      'created_at',
      'created_by',
      'expires_at',
      'id',
      'last_used_at',
      'name',
      'revoked_at',
      'scopes',
    ]);
    assert.equal(mine?.created_by, 'ADMIN_TOKEN');
    assert.deepEqual(mine?.scopes, ['publish:upt']);
    for (const s of secrets) assert.ok(!JSON.stringify(list.body).includes(s), 'no secret in the listing');
  });

  test('a publish:upt token uploads upt, and is refused (403, nothing changed) for another plugin, a disable, a read and tokens', async () => {
    const { token } = await create('upt publisher', ['publish:upt']);
    const up = await upload('upt', token);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.equal((await getJson(`${h.url}/upt`)).status, 200);

    const other = await upload('other', token);
    refused(other, 403, 'PH_ERR_FORBIDDEN_SCOPE', 'publish:other');
    assert.equal((await getJson(`${h.url}/plugins/other`)).status, 404, 'nothing registered');
    assert.equal((await rows("SELECT count(*)::int AS n FROM plugin_sources WHERE plugin_name = 'other'"))[0]?.n, 0);

    refused(await call('POST', '/plugins/upt/disable', token), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'operate:upt');
    refused(await call('DELETE', '/plugins/powertable', token), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'publish:powertable');
    refused(await call('POST', '/plugins/powertable/rollback', token, { version: '1.0.0' }), 403, 'PH_ERR_FORBIDDEN_SCOPE');
    refused(await call('GET', '/plugins/upt/config', token), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'read');
    refused(await call('POST', '/tokens', token, { name: 'escalate', scopes: ['admin'] }), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'admin');
    refused(await call('GET', '/tokens', token), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'admin');
    refused(await call('POST', '/plugins', token, { path: 'powertable' }), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'admin');
    assert.equal(await statusOf('upt'), 'active');
    assert.equal(await statusOf('powertable'), 'active');
    assert.equal((await rows("SELECT count(*)::int AS n FROM api_tokens WHERE name = 'escalate'"))[0]?.n, 0);
    assert.equal((await getJson(`${h.url}/hello`)).status, 200, 'the host still serves');
  });

  test('a read token reads a configuration and cannot disable; operate:* disables any plugin and cannot publish', async () => {
    const { token } = await create('reader', ['read']);
    const cfg = await call('GET', '/plugins/powertable/config', token);
    assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
    refused(await call('POST', '/plugins/powertable/disable', token), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'operate:powertable');
    refused(await call('PATCH', '/plugins/powertable/config', token, {}), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'operate:powertable');
    assert.equal(await statusOf('powertable'), 'active');

    const ops = await create('operator', ['operate:*']);
    const off = await call('POST', '/plugins/powertable/disable', ops.token);
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal((await call('POST', '/plugins/powertable/enable', ops.token)).status, 200);
    refused(await upload('powertable', ops.token), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'publish:powertable');
  });

  test('GET /audit?plugin=upt names the token that uploaded it, and the refusals, with request ids and never a secret', async () => {
    const r = await call('GET', '/audit?plugin=upt', ADMIN);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const entries = r.body.entries as Array<Record<string, unknown>>;
    const upload = entries.find((e) => e.action === 'PUT /plugins/:name/source' && e.outcome === 'ok');
    assert.equal(upload?.actor, 'upt publisher');
    assert.match(String(upload?.token_id), /^tok_/);
    assert.equal(upload?.node_id, h.config.nodeId);
    assert.equal(upload?.status, 201);
    assert.match(String(upload?.request_id), /^[0-9a-f-]{36}$/);
    const disable = entries.find((e) => e.action === 'POST /plugins/:name/disable');
    assert.equal(disable?.outcome, 'refused');
    assert.equal(disable?.code, 'PH_ERR_FORBIDDEN_SCOPE');
    // the answer's request id is the audit entry's
    const tagged = await call('POST', '/plugins/upt/toggle', undefined, undefined, { 'x-request-id': 'trace-42' });
    assert.equal(tagged.headers.get('x-request-id'), 'trace-42', JSON.stringify(tagged.body));
    // a refusal is recorded beside its answer (never delaying it): wait for the entry
    const traced = await waitFor(async () => {
      const byToken = await call('GET', '/audit?token=anonymous&limit=5', ADMIN);
      return (byToken.body.entries as Array<Record<string, unknown>>).find((e) => e.request_id === 'trace-42');
    }, 'the refused toggle in the audit trail');
    assert.deepEqual([traced.code, traced.outcome, traced.plugin], ['PH_ERR_UNAUTHORIZED', 'refused', 'upt']);
    // since: a date in the future selects nothing; a bad one is refused
    const later = await call('GET', `/audit?since=${new Date(Date.now() + 3_600_000).toISOString()}`, ADMIN);
    assert.deepEqual([later.status, later.body.entries.length], [200, 0]);
    refused(await call('GET', '/audit?since=yesterday', ADMIN), 400, 'PH_ERR_BAD_REQUEST');
    // pages: `next` is the `before` of the following page, which holds older entries only
    const page1 = await call('GET', '/audit?limit=2', ADMIN);
    assert.equal(page1.body.entries.length, 2);
    const page2 = await call('GET', `/audit?limit=2&before=${page1.body.next}`, ADMIN);
    assert.ok(Number(page2.body.entries[0]?.id) < Number(page1.body.entries[1]?.id));
    // a read token reads the trail; a publish token cannot
    const reader = await create('audit reader', ['read']);
    assert.equal((await call('GET', '/audit?limit=1', reader.token)).status, 200);
    refused(await call('GET', '/audit', secrets[1]), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'read');
    const all = await call('GET', '/audit?limit=500', ADMIN);
    for (const s of secrets) assert.ok(!JSON.stringify(all.body).includes(s), 'no secret in the audit trail');
  });

  test('a revoked token and an expired one are refused at once, with their codes; revoking twice keeps the first date', async () => {
    const doomed = await create('doomed', ['read']);
    assert.equal((await call('GET', '/plugins/upt/config', doomed.token)).status, 200);
    const gone = await call('DELETE', `/tokens/${doomed.id}`, ADMIN);
    assert.equal(gone.status, 200);
    assert.ok(gone.body.revoked_at);
    refused(await call('GET', '/plugins/upt/config', doomed.token), 401, 'PH_ERR_TOKEN_REVOKED');
    // the trail names the revoked token and who revoked it; the use before is the token's last use
    const trail = await call('GET', `/audit?token=ADMIN_TOKEN&limit=1`, ADMIN);
    assert.deepEqual([trail.body.entries[0]?.action, trail.body.entries[0]?.target], ['DELETE /tokens/:id', doomed.id]);
    await waitFor(
      async () =>
        ((await call('GET', '/tokens', ADMIN)).body as Array<Record<string, unknown>>).find((x) => x.id === doomed.id)?.last_used_at,
      'the last use recorded',
    );
    const refusal = await waitFor(async () => {
      const r = await call('GET', `/audit?token=${doomed.id}&limit=5`, ADMIN);
      return (r.body.entries as Array<Record<string, unknown>>).find((e) => e.code === 'PH_ERR_TOKEN_REVOKED');
    }, "the revoked token's refusal, under its name");
    assert.equal(refusal.actor, 'doomed');
    const again = await call('DELETE', `/tokens/${doomed.id}`, ADMIN);
    assert.equal(again.body.revoked_at, gone.body.revoked_at);

    const aging = await create('aging', ['read'], { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal((await call('GET', '/plugins/upt/config', aging.token)).status, 200);
    // time passes (by SQL): the trigger tells the node, whose cached row is dropped
    await rows(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = '${aging.id}'`);
    refused(await call('GET', '/plugins/upt/config', aging.token), 401, 'PH_ERR_TOKEN_EXPIRED');
    refused(
      await call('POST', '/tokens', ADMIN, { name: 'past', scopes: ['read'], expiresAt: '2001-01-01T00:00:00Z' }),
      400,
      'PH_ERR_BAD_REQUEST',
    );
  });

  test('hostile callers: made-up tokens and ids, bad scopes and names are refused with codes; nothing changes', async () => {
    const before = (await rows('SELECT count(*)::int AS n FROM api_tokens'))[0]?.n;
    for (let i = 0; i < 20; i++) {
      refused(await call('POST', '/plugins/upt/disable', `ph_${randomBytes(32).toString('base64url')}`), 401, 'PH_ERR_TOKEN_INVALID');
    }
    const real = secrets[1] as string;
    refused(await call('POST', '/plugins/upt/disable', real.toUpperCase()), 401, 'PH_ERR_UNAUTHORIZED');
    refused(await call('POST', '/plugins/upt/disable', `${real}x`), 401, 'PH_ERR_TOKEN_INVALID');
    refused(await call('DELETE', `/tokens/tok_${'0'.repeat(24)}`, ADMIN), 404, 'PH_ERR_TOKEN_NOT_FOUND');
    refused(await call('DELETE', `/tokens/tok_${'0'.repeat(24)}`, real), 403, 'PH_ERR_FORBIDDEN_SCOPE', 'admin');
    for (const scopes of [['write'], ['publish:'], ['publish:../etc'], ['admin '], ['operate:A'], [], [7], ['read', 'publish:x y']]) {
      const r = await call('POST', '/tokens', ADMIN, { name: 'bad', scopes });
      assert.equal(r.status, 400, JSON.stringify(scopes));
      assert.ok(['PH_ERR_VALIDATION', 'PH_ERR_SCOPE_INVALID'].includes(r.body.code), r.body.code);
    }
    refused(await call('POST', '/tokens', ADMIN, { name: 'x'.repeat(101), scopes: ['read'] }), 400, 'PH_ERR_VALIDATION');
    refused(await call('POST', '/tokens', ADMIN, { name: 'new\nline', scopes: ['read'] }), 400, 'PH_ERR_BAD_REQUEST');
    refused(await call('GET', '/audit?before=1;DROP', ADMIN), 400, 'PH_ERR_BAD_REQUEST');
    assert.equal((await rows('SELECT count(*)::int AS n FROM api_tokens'))[0]?.n, before);
    assert.equal(await statusOf('upt'), 'active');
  });

  test('no secret in any row of any table, nor in any log line; the token names are stored', async () => {
    const tables = await rows(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    );
    let dump = '';
    for (const t of tables) dump += JSON.stringify(await rows(`SELECT t::text AS r FROM "${String(t.table_name)}" t`));
    assert.ok(dump.includes('upt publisher'), 'the token names are there');
    for (const s of secrets) assert.ok(!dump.includes(s), 'no secret in the database');
    const logs = JSON.stringify(h.logs.lines);
    for (const s of secrets) assert.ok(!logs.includes(s), 'no secret in the logs');
  });

  test('every guarded route has a scope in ROUTE_SCOPES, and every entry names a guarded route', () => {
    const guarded = [...h.host.access.guarded];
    assert.ok(guarded.length >= 15, guarded.join(', '));
    const missing = guarded.filter((k) => ROUTE_SCOPES[k] === undefined);
    assert.deepEqual(missing, [], `routes without a scope: ${missing.join(', ')}`);
    const stale = Object.keys(ROUTE_SCOPES).filter((k) => !h.host.access.guarded.has(k));
    assert.deepEqual(stale, [], `scope entries for no route: ${stale.join(', ')}`);
  });

  test('GET /tokens/self says what the caller may do', async () => {
    const { token } = await create('self', ['publish:upt', 'operate:*']);
    const me = await call('GET', '/tokens/self', token);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body.publish, ['upt']);
    assert.deepEqual(me.body.operate, ['*']);
    assert.equal((await call('GET', '/tokens/self', ADMIN)).body.name, 'ADMIN_TOKEN');
  });

  test('audit retention deletes entries older than AUDIT_RETENTION_DAYS and keeps the rest', async () => {
    await rows(
      "INSERT INTO audit_log (at, actor, via, action, outcome) VALUES (now() - interval '91 days', 'old', 'api', 'POST /x', 'ok')",
    );
    const before = Number((await rows('SELECT count(*)::int AS n FROM audit_log'))[0]?.n);
    assert.equal(await h.host.access.audit.prune(h.config.auditRetentionDays * 86_400_000), 1);
    assert.equal(Number((await rows('SELECT count(*)::int AS n FROM audit_log'))[0]?.n), before - 1);
    assert.equal((await rows("SELECT count(*)::int AS n FROM audit_log WHERE actor = 'old'"))[0]?.n, 0);
  });

  if (db.kind === 'postgres') {
    test('a plugin row changed by SQL directly is audited with the database user as the actor', async () => {
      await rows("UPDATE plugins SET status = 'inactive' WHERE name = 'upt'");
      const r = await call('GET', '/audit?plugin=upt&limit=1', ADMIN);
      assert.deepEqual(
        { via: r.body.entries[0]?.via, actor: r.body.entries[0]?.actor, action: r.body.entries[0]?.action },
        { via: 'sql', actor: 'postgres', action: 'UPDATE plugins' },
      );
      await rows("UPDATE plugins SET status = 'active' WHERE name = 'upt'");
    });
  }
});
