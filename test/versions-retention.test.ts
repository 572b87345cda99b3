// The version history and the canary's own decisions on one node, on both databases: versions past VERSIONS_KEPT
// are collected with their artifacts (rows and files) unless pinned or serving; a candidate that fails to load or
// answers 5xx on its canary node aborts the rollout by itself (the pinned version keeps serving); a clean one
// with autoPromote promotes itself after its bake.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ReleaseRepository } from '../src/db/index.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'retention-test-token';
const NAME = 'hist';

for (const kind of DB_KINDS) {
  describe(`version history on ${kind}`, () => {
    let t: TestHost;
    let db: TestDatabase | undefined;
    let plugins: { dir: string; cleanup(): void };
    const hashes = new Map<string, string>();

    const write = (version: string, extra: Partial<Parameters<typeof pluginSource>[0]> = {}) =>
      writePlugin(plugins.dir, NAME, pluginSource({ ...extra, name: NAME, version }));
    const served = async () => (await getJson(`${t.url}/${NAME}`)).body.version as string | undefined;
    const rollout = (body: Record<string, unknown>) =>
      getJson(`${t.adminUrl}/plugins/${NAME}/rollout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ended = (state: string) =>
      waitFor(async () => {
        const v = (await getJson(`${t.url}/plugins/${NAME}`)).body;
        return v.rollout?.state === state ? v : undefined;
      }, `the rollout ${state}`);

    before(async () => {
      plugins = tempDir('ph-hist-plugins-');
      write('1.0.0');
      if (kind === 'postgres') db = await createTestDatabase();
      t = await startTestHost({
        kind,
        pluginsDir: plugins.dir,
        ...(db ? { databaseUrl: db.url } : {}),
        env: {
          VERSIONS_KEPT: '2',
          ARTIFACT_RETENTION_MS: '0',
          ADMIN_TOKEN: TOKEN,
          TYPECHECK: '0',
          ROLLOUT_CHECK_INTERVAL_MS: '100',
          ROLLOUT_MIN_REQUESTS: '5',
        },
      });
    });
    after(async () => {
      await t?.close();
      await db?.drop();
      plugins?.cleanup();
    });

    test('versions past retention are collected with their artifacts; the pinned and the published stay', async () => {
      for (const v of ['1.0.1', '1.0.2', '1.0.3']) {
        write(v);
        await t.host.admin.reload(NAME);
        await t.host.manager.reconcile(NAME);
      }
      const listed = await t.host.releases.versions(NAME, 15_000);
      assert.deepEqual(
        listed.map((v) => v.version),
        ['1.0.3', '1.0.2', '1.0.1', '1.0.0'],
      );
      for (const v of listed) hashes.set(v.version, v.hash);
      await t.host.releases.rollback(NAME, { version: '1.0.0' }, 'test');
      await t.host.manager.reconcile(NAME);
      assert.equal(await served(), '1.0.0');

      await t.host.janitor?.runOnce();
      assert.deepEqual(
        (await t.host.releases.versions(NAME, 15_000)).map((v) => v.version),
        ['1.0.3', '1.0.2', '1.0.0'],
        'the two newest, and the pinned one',
      );
      const gone = hashes.get('1.0.1') as string;
      const rows = (await sqlByHand(t, db?.url, 'SELECT hash FROM plugin_artifacts WHERE plugin_name = $1', [NAME])) as Array<{
        hash: string;
      }>;
      assert.deepEqual(rows.map((r) => r.hash).sort(), [hashes.get('1.0.0'), hashes.get('1.0.2'), hashes.get('1.0.3')].sort());
      assert.equal(existsSync(path.join(t.config.artifactsDir, `${gone}.cjs`)), false, 'its artifact file is gone too');
      assert.ok(existsSync(path.join(t.config.artifactsDir, `${hashes.get('1.0.0')}.cjs`)));
      assert.equal(await served(), '1.0.0');
    });

    test('of two rollbacks racing, the one that finds the row changed since it read it is refused', async () => {
      const releases = new ReleaseRepository(t.host.db.orm);
      const [row] = (await sqlByHand(t, db?.url, 'SELECT updated_at FROM plugins WHERE name = $1', [NAME])) as Array<{
        updated_at: Date | string;
      }>;
      const seen = new Date(row?.updated_at as string);
      const first = await releases.pin(NAME, hashes.get('1.0.2') as string, '1.0.2', seen);
      assert.notEqual(typeof first, 'string', 'the first pin wins');
      assert.equal(await releases.pin(NAME, hashes.get('1.0.3') as string, '1.0.3', seen), 'changed-meanwhile');
      // back to the pin the next tests start from
      await t.host.releases.rollback(NAME, { version: '1.0.0' }, 'test');
      await t.host.manager.reconcile(NAME);
      assert.equal(await served(), '1.0.0');
    });

    test('a candidate that fails to load on its canary node aborts the rollout; the pinned version keeps serving', async () => {
      write('1.0.4', { initThrows: 'no database' });
      const r = await rollout({ nodes: [t.config.nodeId], bakeMs: 600_000 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const d = await ended('aborted');
      assert.match(d.rollout.reason, new RegExp(`^candidate failed to load on ${t.config.nodeId}: PH_ERR_HOOK_FAILED: .*no database`));
      assert.equal(d.pinned, '1.0.0');
      assert.equal(await served(), '1.0.0');
    });

    test('a candidate answering 5xx on its canary is aborted once it has answered enough requests', async () => {
      write('1.0.5', { routes: `server.get('/${NAME}', async (req, reply) => reply.code(500).send({ version: '1.0.5' }));` });
      const r = await rollout({ nodes: [t.config.nodeId], bakeMs: 600_000 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      // requests until the canary judges the ratio: each poll sends one more
      const d = await waitFor(async () => {
        await getJson(`${t.url}/${NAME}`);
        const v = (await getJson(`${t.url}/plugins/${NAME}`)).body;
        return v.rollout?.state === 'aborted' ? v : undefined;
      }, 'the canary aborts the rollout on its 5xx ratio');
      assert.match(d.rollout.reason, /^5xx ratio 100\.0% on .* \(previous version 0\.0%, threshold 5 points\)$/);
      await waitFor(async () => (await served()) === '1.0.0', 'the pinned version served again');
    });

    test('a clean candidate with autoPromote promotes itself after its bake, and unpins', async () => {
      write('1.0.6');
      const r = await rollout({ nodes: [t.config.nodeId], bakeMs: 200, autoPromote: true });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const d = await ended('promoted');
      assert.match(d.rollout.reason, /^baked 200 ms on .* without a fault$/);
      assert.equal(d.pinned, null);
      await waitFor(async () => (await served()) === '1.0.6', 'the promoted version served');
    });
  });
}
