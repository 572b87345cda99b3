/**
 * The repository's one-statement reads and writes, on both databases: a plugin row read with its endpoints
 * and rollout as JSON comes back exactly as the tables read directly do (timestamps as dates, JSON columns
 * parsed), and a publication writes its artifact, history entry and row change together.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eq } from 'drizzle-orm';
import {
  type Database,
  openDatabase,
  PluginRepository,
  pluginArtifacts,
  pluginEndpoints,
  pluginRollouts,
  plugins,
  pluginVersions,
} from '../src/db/index.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from './support/databases.js';
import { tempDir } from './support/util.js';

for (const kind of DB_KINDS) {
  describe(`plugin rows in one statement on ${kind}`, () => {
    let pg: TestDatabase | undefined;
    let dir: { dir: string; cleanup(): void };
    let db: Database;
    let repo: PluginRepository;

    before(async () => {
      dir = tempDir('ph-rows-');
      if (kind === 'postgres') pg = await createTestDatabase();
      db = await openDatabase({ databaseUrl: pg?.url, dataDir: kind === 'pglite' ? path.join(dir.dir, 'db') : undefined });
      repo = new PluginRepository(db.orm);
    });
    after(async () => {
      await db?.close();
      await pg?.drop();
      dir?.cleanup();
    });

    test('a row with its endpoints and rollout reads as the tables do', async () => {
      const { row } = await repo.insertIfAbsent({ name: 'rows', version: '1.0.0', type: 'dynamic', status: 'active', path: 'rows' }, [
        { method: 'POST', path: '/b', handler: 'make' },
        { method: 'GET', path: '/a' },
        { method: 'GET', path: '/b', type: 'RPC' },
      ]);
      assert.ok(row);
      const plain = await repo.getByName('rows');
      assert.ok(plain);
      assert.equal(plain.rollout, null);
      assert.deepEqual(
        plain.endpoints.map((e) => `${e.method} ${e.path} ${e.handler} ${e.type}`),
        ['GET /a  REST', 'GET /b  RPC', 'POST /b make REST'],
        'ordered by path, then method',
      );
      const endedAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
      await db.orm.insert(pluginRollouts).values({
        id: randomUUID(),
        pluginId: row.id,
        name: 'rows',
        candidateHash: 'c'.repeat(64),
        candidateVersion: '1.1.0',
        previousHash: 'p'.repeat(64),
        previousVersion: '1.0.0',
        fromSource: true,
        nodes: ['node-a', 'node-b'],
        percent: null,
        state: 'aborted',
        reason: 'a "quoted" reason',
        bakeMs: 1500,
        endedAt,
      });
      const read = await repo.getByName('rows');
      const [rollout] = await db.orm.select().from(pluginRollouts).where(eq(pluginRollouts.pluginId, row.id));
      const endpoints = await db.orm.select().from(pluginEndpoints).where(eq(pluginEndpoints.pluginId, row.id));
      assert.ok(read?.rollout && rollout);
      assert.deepEqual(read.rollout, rollout);
      assert.ok(read.rollout.startedAt instanceof Date && read.rollout.endedAt instanceof Date);
      assert.equal(read.rollout.endedAt.getTime(), endedAt.getTime());
      assert.deepEqual(read.rollout.nodes, ['node-a', 'node-b']);
      const byKey = (e: { method: string; path: string }) => `${e.path} ${e.method}`;
      assert.deepEqual(
        read.endpoints,
        [...endpoints].sort((a, b) => (byKey(a) < byKey(b) ? -1 : 1)),
      );
      const listed = (await repo.list()).find((r) => r.name === 'rows');
      assert.deepEqual(listed, read);
    });

    test('a registration writes artifact, history, row and endpoints in one statement, unless the name exists or was removed', async () => {
      const hash = 'b'.repeat(64);
      const artifact = {
        record: { hash, pluginName: 'fresh', version: '2.0.0', format: 'fmt', bundle: 'b', sha256: 'd'.repeat(64) },
        history: { action: 'discovery', publishedBy: 'node-a', metadata: { version: '2.0.0' } },
      };
      const registeredAt = new Date(Date.UTC(2026, 5, 1, 12, 0, 0, 123));
      const fresh = await repo.insertIfAbsent(
        { name: 'fresh', version: '2.0.0', type: 'dynamic', status: 'active', artifactHash: hash, generation: 3, createdAt: registeredAt },
        [{ method: 'GET', path: '/fresh' }],
        { unlessRemoved: true, artifact },
      );
      assert.equal(fresh.created, true);
      assert.equal(fresh.removed, false);
      const [stored] = await db.orm.select().from(plugins).where(eq(plugins.name, 'fresh'));
      assert.deepEqual(fresh.row, stored, 'the returned row is the stored one, typed as read directly');
      assert.equal(stored?.createdAt.getTime(), registeredAt.getTime());
      assert.equal(stored?.generation, 3);
      assert.deepEqual(
        (await repo.getByName('fresh'))?.endpoints.map((e) => `${e.method} ${e.path} ${e.handler} ${e.type}`),
        ['GET /fresh  REST'],
      );
      assert.equal((await db.orm.select().from(pluginArtifacts).where(eq(pluginArtifacts.hash, hash))).length, 1);
      assert.equal((await db.orm.select().from(pluginVersions).where(eq(pluginVersions.hash, hash))).length, 1);

      const again = await repo.insertIfAbsent({ name: 'fresh', version: '9.9.9', type: 'dynamic', status: 'active' }, [], {
        unlessRemoved: true,
      });
      assert.deepEqual(again, { row: stored, created: false, removed: false }, 'the name exists: nothing changes');

      await repo.delete('fresh', 'operator');
      const refused = await repo.insertIfAbsent({ name: 'fresh', version: '3.0.0', type: 'dynamic', status: 'active' }, [], {
        unlessRemoved: true,
      });
      assert.deepEqual(refused, { row: undefined, created: false, removed: true }, 'removed: discovery does not bring it back');
      const explicit = await repo.insertIfAbsent({ name: 'fresh', version: '3.0.0', type: 'dynamic', status: 'active' }, []);
      assert.equal(explicit.created, true, 'an explicit registration does');
      assert.equal(
        (await repo.removals()).some((r) => r.name === 'fresh'),
        false,
        'and forgets the removal',
      );
    });

    test('a publication writes the artifact, its history entry and the row in one statement', async () => {
      const hash = 'a'.repeat(64);
      await repo.artifacts.put(
        { hash, pluginName: 'rows', version: '1.2.0', format: 'fmt', bundle: 'bundle \u00e9', sha256: 's'.repeat(64) },
        { action: 'source', publishedBy: 'node-a', metadata: { name: 'rows', version: '1.2.0', note: "it's" } },
        { name: 'rows', patch: { artifactHash: hash, version: '1.2.0', description: 'published' } },
      );
      const [artifact] = await db.orm.select().from(pluginArtifacts).where(eq(pluginArtifacts.hash, hash));
      assert.equal(artifact?.bundle, 'bundle \u00e9');
      assert.equal(artifact?.size, Buffer.byteLength('bundle \u00e9'));
      const [entry] = await db.orm.select().from(pluginVersions).where(eq(pluginVersions.hash, hash));
      assert.deepEqual(entry?.metadata, { name: 'rows', version: '1.2.0', note: "it's" });
      assert.equal(entry?.publishedBy, 'node-a');
      const [r] = await db.orm.select().from(plugins).where(eq(plugins.name, 'rows'));
      assert.equal(r?.artifactHash, hash);
      assert.equal(r?.version, '1.2.0');
      assert.equal(r?.description, 'published');
      // the same publication again changes nothing and fails nothing
      await repo.artifacts.put(
        { hash, pluginName: 'rows', version: '1.2.0', format: 'fmt', bundle: 'bundle \u00e9', sha256: 's'.repeat(64) },
        { action: 'source', publishedBy: 'node-a', metadata: {} },
        { name: 'rows', patch: { artifactHash: hash } },
      );
      assert.equal((await db.orm.select().from(pluginVersions).where(eq(pluginVersions.hash, hash))).length, 1);
    });

    test("a new version's row and endpoints change together or not at all", async () => {
      const { row } = await repo.insertIfAbsent({ name: 'upgraded', version: '1.0.0', type: 'dynamic', status: 'active' }, [
        { method: 'GET', path: '/one' },
      ]);
      assert.ok(row);
      const endpointsOf = async () =>
        (await db.orm.select().from(pluginEndpoints).where(eq(pluginEndpoints.pluginId, row.id))).map((e) => `${e.method} ${e.path}`);
      // an endpoint the table refuses (no method): the row's change is rolled back with it
      const refused = repo.updateWithEndpoints('upgraded', { version: '2.0.0' }, [
        { method: 'GET', path: '/two' },
        { method: null as unknown as string, path: '/broken' },
      ]);
      await assert.rejects(refused);
      assert.equal((await repo.getByName('upgraded'))?.version, '1.0.0', 'the row is unchanged');
      assert.deepEqual(await endpointsOf(), ['GET /one'], 'the endpoints are unchanged');

      const written = await repo.updateWithEndpoints('upgraded', { version: '2.0.0' }, [{ method: 'GET', path: '/two' }]);
      assert.equal(written?.version, '2.0.0');
      assert.deepEqual(await endpointsOf(), ['GET /two']);
      assert.equal(await repo.updateWithEndpoints('nobody', { version: '9.9.9' }, []), undefined, 'no such row: nothing written');
    });
  });
}
