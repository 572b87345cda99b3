// Versions, rollback and staged rollouts with three server processes on one PostgreSQL database: A and B share
// a plugins directory (the newest source), C has none and never discovers. Every published version is listed;
// a rollback pins every node, across a restart of a node whose source differs; a canary goes to chosen nodes
// only (by name or by a stable percentage) and is promoted or aborted, by an admin or by a canary node itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chosenByPercent } from '../src/releases/selection.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, ROOT, tempDir, waitFor } from './support/util.js';

const TOKEN = 'releases-test-token';
const PLUGIN = 'relay';

/** Node ids such that 50% picks B and C but not A (the ids are ours to choose; the pick is the host's). */
function nodeIds(): { a: string; b: string; c: string } {
  for (let k = 0; ; k++) {
    const ids = { a: `node-a${k}`, b: `node-b${k}`, c: `node-c${k}` };
    const pick = (id: string) => chosenByPercent(id, PLUGIN, 50);
    if (!pick(ids.a) && pick(ids.b) && pick(ids.c)) return ids;
  }
}

describe('versions, rollback and staged rollouts on three nodes', () => {
  const ids = nodeIds();
  let db: TestDatabase;
  let shared: { dir: string; cleanup(): void };
  let empty: { dir: string; cleanup(): void };
  const dataDirs: Array<{ dir: string; cleanup(): void }> = [];
  const envs = new Map<string, Record<string, string>>();
  let a: ServerProcess;
  let b: ServerProcess;
  let c: ServerProcess;
  const hashes = new Map<string, string>();

  const nodes = () => [a, b, c];
  const write = (version: string, extra: Parameters<typeof pluginSource>[0] = { name: PLUGIN }) =>
    writePlugin(shared.dir, PLUGIN, pluginSource({ ...extra, name: PLUGIN, version }));
  const served = async (n: ServerProcess) => {
    const r = await getJson(`${n.url}/${PLUGIN}`);
    return r.status === 200 ? (r.body.version as string) : `status ${r.status}`;
  };
  const servesEverywhere = (want: Record<string, string>, what: string) =>
    Promise.all(nodes().map((n) => waitFor(async () => (await served(n)) === want[n.name], `${n.name} serves ${want[n.name]} (${what})`)));
  const all = (v: string) => ({ A: v, B: v, C: v });
  const admin = (n: ServerProcess, route: string, body?: unknown) =>
    getJson(`${n.adminUrl}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const aborts = async (n: ServerProcess) => {
    const m = /^plugin_host_rollouts_total\{outcome="aborted"\} (\d+)$/m.exec(String((await getJson(`${n.adminUrl}/metrics`)).body));
    return Number(m?.[1] ?? 0);
  };
  const detail = async (n: ServerProcess = a) => (await getJson(`${n.url}/plugins/${PLUGIN}`)).body;
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'plugin-host.mjs'), ...args], {
      env: { ...process.env, DATABASE_URL: db.url, PLUGINS_DIR: shared.dir, TYPECHECK: '0', LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    });

  function start(name: 'A' | 'B' | 'C'): Promise<ServerProcess> {
    let env = envs.get(name);
    if (env === undefined) {
      const data = tempDir(`ph-${name}-`);
      dataDirs.push(data);
      env = {
        DATABASE_URL: db.url,
        DATA_DIR: data.dir,
        NODE_ID: name === 'A' ? ids.a : name === 'B' ? ids.b : ids.c,
        PLUGINS_DIR: name === 'C' ? empty.dir : shared.dir,
        ...(name === 'C' ? { DISCOVER: '0' } : {}),
        ADMIN_TOKEN: TOKEN,
        TYPECHECK: '0',
        // only notifications wake a node: a source written for a later step is not picked up by a periodic pass
        RECONCILE_INTERVAL_MS: '600000',
        ROLLOUT_BAKE_MS: '4000',
        ROLLOUT_CHECK_INTERVAL_MS: '100',
      };
      envs.set(name, env);
    }
    return startServer({ name, env });
  }

  before(async () => {
    db = await createTestDatabase();
    shared = tempDir('ph-shared-plugins-');
    empty = tempDir('ph-empty-plugins-');
    write('0.1.0');
  });

  after(async () => {
    await killAllServers();
    await db?.drop();
    shared?.cleanup();
    empty?.cleanup();
    for (const d of dataDirs) d.cleanup();
  });

  test('three versions published and listed newest first, with the nodes serving each', async () => {
    a = await start('A');
    [b, c] = await Promise.all([start('B'), start('C')]);
    await servesEverywhere(all('0.1.0'), 'registered by discovery');
    for (const v of ['0.2.0', '0.3.0']) {
      write(v);
      const r = await admin(a, `/plugins/${PLUGIN}/reload`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await servesEverywhere(all(v), `published by a reload of ${v}`);
    }
    const list = await waitFor(async () => {
      const r = await getJson(`${a.adminUrl}/plugins/${PLUGIN}/versions`);
      return r.body[0]?.nodes?.length === 3 ? r.body : undefined;
    }, 'the newest version listed as served by three nodes');
    assert.deepEqual(
      list.map((v: { version: string }) => v.version),
      ['0.3.0', '0.2.0', '0.1.0'],
    );
    for (const v of list) {
      assert.match(v.hash, /^[0-9a-f]{16,}$/);
      assert.ok(!Number.isNaN(Date.parse(v.created_at)));
      hashes.set(v.version, v.hash);
    }
    assert.deepEqual(list[0].nodes.sort(), [ids.a, ids.b, ids.c].sort());
    assert.deepEqual(list[2].nodes, []);
    assert.equal(list[0].action, 'reload');
    assert.equal(list[0].published_by, ids.a);
    assert.equal(list[2].action, 'discovery');
    // the CLI reads the same history
    const out = cli('versions', PLUGIN, '--json');
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(
      JSON.parse(out.stdout).map((v: { version: string }) => v.version),
      ['0.3.0', '0.2.0', '0.1.0'],
    );
  });

  test('a rollback to the first version is served by all three, and kept across a restart of a node with the newest source', async () => {
    const out = cli('rollback', PLUGIN, '0.1.0');
    assert.equal(out.status, 0, out.stderr);
    await servesEverywhere(all('0.1.0'), 'pinned by the CLI');
    const d = await waitFor(async () => {
      const v = await detail();
      return v.nodes?.filter((n: { note: string | null }) => n.note === 'source differs from pinned version').length === 2 ? v : undefined;
    }, 'the two nodes with the newest source say it differs from the pinned version');
    assert.equal(d.pinned, '0.1.0');
    assert.equal(d.pinned_hash, hashes.get('0.1.0'));
    assert.equal(d.nodes.find((n: { node_id: string }) => n.node_id === ids.c).note, null, 'C has no source to differ');

    await a.stop();
    a = await start('A');
    await servesEverywhere(all('0.1.0'), 'A restarted with the 0.3.0 source still serves the pin');
    assert.equal((await detail()).pinned, '0.1.0');
  });

  test('a canary on one node while the others keep the pinned version, then promoted', async () => {
    const r = await admin(b, `/plugins/${PLUGIN}/rollout`, { nodes: [ids.c], version: '0.3.0' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await servesEverywhere({ A: '0.1.0', B: '0.1.0', C: '0.3.0' }, 'canary on C');
    const d = await detail();
    assert.equal(d.rollout.state, 'canary');
    assert.equal(d.rollout.candidate_version, '0.3.0');
    assert.equal(d.rollout.candidate_hash, hashes.get('0.3.0'));
    assert.deepEqual(d.rollout.nodes, [ids.c]);
    await waitFor(async () => {
      const v = await detail();
      return v.nodes.find((n: { node_id: string }) => n.node_id === ids.c)?.serving_version === '0.3.0';
    }, 'per-node version shown');

    const p = await admin(a, `/plugins/${PLUGIN}/rollout/promote`);
    assert.equal(p.status, 200, JSON.stringify(p.body));
    await servesEverywhere(all('0.3.0'), 'promoted');
    const after = await detail();
    assert.equal(after.rollout.state, 'promoted');
    assert.ok(after.rollout.ended_at);
    assert.equal(after.pinned, '0.3.0', 'a stored candidate promoted is pinned');
    // a reload serves the source again: the pin goes
    assert.equal((await admin(a, `/plugins/${PLUGIN}/reload`)).status, 200);
    await waitFor(async () => (await detail()).pinned === null, 'unpinned by a reload');
    await servesEverywhere(all('0.3.0'), 'unpinned');
  });

  test('a percentage picks a stable subset; a chosen node restarted in the middle of the rollout converges', async () => {
    const r = await admin(a, `/plugins/${PLUGIN}/rollout`, { percent: 50, version: '0.2.0' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await servesEverywhere({ A: '0.3.0', B: '0.2.0', C: '0.2.0' }, '50% picks B and C');
    assert.deepEqual((await detail()).rollout.nodes.sort(), [ids.b, ids.c].sort());

    await b.stop();
    b = await start('B');
    await servesEverywhere({ A: '0.3.0', B: '0.2.0', C: '0.2.0' }, 'B restarted mid-rollout serves the candidate again');

    const ab = await admin(c, `/plugins/${PLUGIN}/rollout/abort`);
    assert.equal(ab.status, 200, JSON.stringify(ab.body));
    await servesEverywhere(all('0.3.0'), 'aborted: the canaries go back');
    const d = await detail();
    assert.equal(d.rollout.state, 'aborted');
    assert.match(d.rollout.reason, /aborted by admin API/);
    assert.equal(d.pinned, null, 'a stored candidate aborted leaves no pin');
  });

  test('two concurrent rollouts: one wins, the other gets 409', async () => {
    const [r1, r2] = await Promise.all([
      admin(a, `/plugins/${PLUGIN}/rollout`, { nodes: [ids.a], version: '0.1.0' }),
      admin(b, `/plugins/${PLUGIN}/rollout`, { nodes: [ids.c], version: '0.2.0' }),
    ]);
    assert.deepEqual([r1.status, r2.status].sort(), [200, 409], JSON.stringify([r1.body, r2.body]));
    const lost = r1.status === 409 ? r1 : r2;
    assert.equal(lost.body.code, 'PH_ERR_ROLLOUT_CONFLICT');
    // a rollback is refused as well while the canary runs
    const rb = await admin(c, `/plugins/${PLUGIN}/rollback`, { version: '0.1.0' });
    assert.equal(rb.status, 409);
    assert.equal((await admin(a, `/plugins/${PLUGIN}/rollout/abort`)).status, 200);
    const again = await admin(a, `/plugins/${PLUGIN}/rollout/abort`);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'PH_ERR_ROLLOUT_NOT_FOUND');
    await servesEverywhere(all('0.3.0'), 'after the abort');
  });

  test('a candidate that does not compile or does not load, or a rollout to no live node, is refused without touching any node', async () => {
    const before = await detail();
    const versions = (await getJson(`${a.adminUrl}/plugins/${PLUGIN}/versions`)).body.length;
    const nowhere = await admin(a, `/plugins/${PLUGIN}/rollout`, { nodes: ['node-nowhere'], version: '0.1.0' });
    assert.equal(nowhere.status, 422);
    assert.equal(nowhere.body.code, 'PH_ERR_ROLLOUT_INVALID');
    writePlugin(shared.dir, PLUGIN, `${pluginSource({ name: PLUGIN, version: '0.9.0' })}\nexport const = ;\n`);
    const syntax = await admin(a, `/plugins/${PLUGIN}/rollout`, { nodes: [ids.c] });
    assert.equal(syntax.status, 422);
    assert.equal(syntax.body.code, 'PH_ERR_COMPILE_SYNTAX');
    write('0.9.1', { name: PLUGIN, head: "throw new Error('broken at import');" });
    const evaluate = await admin(a, `/plugins/${PLUGIN}/rollout`, { nodes: [ids.c] });
    assert.equal(evaluate.status, 422);
    assert.equal(evaluate.body.code, 'PH_ERR_LOAD_EVALUATE');
    const d = await detail();
    assert.deepEqual(d.rollout, before.rollout, 'the last rollout is untouched');
    assert.equal((await getJson(`${a.adminUrl}/plugins/${PLUGIN}/versions`)).body.length, versions, 'nothing published');
    await servesEverywhere(all('0.3.0'), 'nothing changed');
    write('0.3.0'); // the source back as it was (same content, same hash)
  });

  test('a candidate whose health check fails is aborted by its canary within the bake period, the reason shown', async () => {
    const abortedBefore = await aborts(c);
    write('0.4.0', { name: PLUGIN, healthCheck: "return { ok: false, detail: 'database down' };" });
    // a bake far longer than this test: only a fault found during it can end the rollout
    const r = await admin(a, `/plugins/${PLUGIN}/rollout`, { nodes: [ids.c], bakeMs: 600_000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.rollout.candidate_version, '0.4.0');
    const d = await waitFor(async () => {
      const v = await detail();
      return v.rollout.state === 'aborted' ? v : undefined;
    }, 'the canary aborts the rollout');
    assert.equal(d.rollout.reason, `health check failed on ${ids.c}: database down`);
    // the candidate came from the source: the previous version is pinned so no source node serves it
    assert.equal(d.pinned, '0.3.0');
    await servesEverywhere(all('0.3.0'), 'back to the previous version');
    assert.equal(await aborts(c), abortedBefore + 1, 'the abort counted where it was decided');
    assert.ok(c.findLog((l) => /rollout of relay .* aborted by canary/.test(String(l.msg))));
  });
});
