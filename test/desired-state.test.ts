import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACT_FORMAT, artifactHeader } from '../src/artifacts/index.js';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

// Case 18: rows changed by hand to states the host cannot serve. Each is refused
// with a recorded error (GET /plugins/:name and the node's observed state), nothing
// is loaded from outside PLUGINS_DIR or the artifacts directory, a version already
// serving keeps serving, and no other plugin changes state.

const g = globalThis as Record<string, unknown>;

/** A plugin that, if it were ever evaluated, would set a global flag. */
function trap(name: string, flag: string): string {
  return pluginSource({
    name,
    version: '6.6.6',
    endpoints: null,
    head: `(globalThis as Record<string, unknown>)[${JSON.stringify(flag)}] = true;`,
  });
}

async function view(t: TestHost, name: string): Promise<any> {
  return (await getJson(`${t.url}/plugins/${name}`)).body;
}

async function erroredWith(t: TestHost, name: string, code: string): Promise<any> {
  return waitFor(async () => {
    const b = await view(t, name);
    return b.last_error?.code === code ? b : undefined;
  }, `${name} to record ${code}`);
}

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('impossible desired state and restarts', { concurrency: true }, () => {
  onEachDatabase('rows changed by hand to impossible states', { concurrency: 1 }, (db) => {
    let t: TestHost;
    let plugins: { dir: string; cleanup(): void };
    let outside: { dir: string; cleanup(): void };
    const flags: string[] = [];
    let baseline: Map<string, string>;

    const sql = (text: string, params: unknown[] = []) => sqlByHand(t, db.url, text, params);
    const insert = (name: string, fields: Record<string, unknown>) => {
      const cols = ['id', 'name', ...Object.keys(fields)];
      const vals = [randomUUID(), name, ...Object.values(fields)];
      return sql(`INSERT INTO plugins (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, vals);
    };
    const flag = (label: string) => {
      const f = `__ph_trap_${db.kind}_${label}_${randomUUID().slice(0, 8)}`;
      flags.push(f);
      return f;
    };

    async function snapshotHealthy(): Promise<Map<string, string>> {
      const out = new Map<string, string>();
      for (const n of ['powertable', 'steady']) {
        const b = await view(t, n);
        assert.equal(b.state, 'serving', n);
        out.set(n, `${b.serving.hash}@${b.serving.loaded_at}`);
      }
      return out;
    }

    before(async () => {
      plugins = pluginsDirWithPowertable();
      outside = tempDir('ph-outside-');
      writePlugin(plugins.dir, 'steady', pluginSource({ name: 'steady' }));
      writePlugin(plugins.dir, 'target', pluginSource({ name: 'target', version: '1.0.0' }));
      t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir });
      baseline = await snapshotHealthy();
    });
    after(async () => {
      await t?.close();
      plugins?.cleanup();
      outside?.cleanup();
      for (const f of flags) delete g[f];
    });

    async function assertOthersUntouched(): Promise<void> {
      assert.deepEqual(await snapshotHealthy(), baseline, 'powertable and steady were not reloaded');
    }

    test('unknown status on a new row: refused, nothing loaded', async () => {
      const f = flag('status');
      const dir = writePlugin(plugins.dir, 'paused', trap('paused', f));
      await insert('paused', { type: 'dynamic', path: dir, source_path: dir, status: 'paused' });
      const b = await erroredWith(t, 'paused', 'PH_ERR_DESIRED_STATE_INVALID');
      assert.equal(b.state, 'error');
      assert.match(b.last_error.message, /^paused: unknown status "paused" \(expected active or inactive\)/);
      assert.equal(g[f], undefined, 'never evaluated');
      assert.equal((await getJson(`${t.url}/paused`)).status, 404);
      const node = await waitFor(async () => {
        const v = await view(t, 'paused');
        return v.nodes?.find((n: { node_id: string }) => n.node_id === t.config.nodeId);
      }, 'the observed state to be recorded');
      assert.equal(node.state, 'error');
      assert.equal(node.last_error.code, 'PH_ERR_DESIRED_STATE_INVALID', 'recorded in observed state');
      assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === 'paused'));
      await assertOthersUntouched();
    });

    test('unknown status on a serving plugin: refused, the serving version stays, a valid status clears the error', async () => {
      const before = await view(t, 'target');
      await sql("UPDATE plugins SET status = 'ACTIVE' WHERE name = 'target'");
      const b = await erroredWith(t, 'target', 'PH_ERR_DESIRED_STATE_INVALID');
      assert.equal(b.state, 'serving');
      assert.equal(b.serving.loaded_at, before.serving.loaded_at);
      assert.equal((await getJson(`${t.url}/target`)).status, 200);
      await sql("UPDATE plugins SET status = 'active' WHERE name = 'target'");
      const ok = await waitFor(async () => {
        const v = await view(t, 'target');
        return v.last_error === null ? v : undefined;
      }, 'the error to clear');
      assert.equal(ok.serving.loaded_at, before.serving.loaded_at, 'not reloaded');
      await assertOthersUntouched();
    });

    test('unknown type, and a source directory that does not match the name: refused', async () => {
      const dir = writePlugin(plugins.dir, 'wasm', pluginSource({ name: 'wasm' }));
      await insert('wasm', { type: 'wasm', path: dir, source_path: dir, status: 'active' });
      const w = await erroredWith(t, 'wasm', 'PH_ERR_DESIRED_STATE_INVALID');
      assert.match(w.last_error.message, /unknown type "wasm"/);
      const steadyDir = path.join(plugins.dir, 'steady');
      await insert('impostor', { type: 'dynamic', path: steadyDir, source_path: steadyDir, status: 'active' });
      const i = await erroredWith(t, 'impostor', 'PH_ERR_DESIRED_STATE_INVALID');
      assert.match(i.last_error.message, /source directory steady does not match the plugin name/);
      await assertOthersUntouched();
    });

    test('source path outside PLUGINS_DIR (absolute, ../ traversal, symlink): refused, nothing evaluated', async () => {
      const cases: [name: string, sourcePath: (dir: string) => string][] = [
        ['evil-abs', (dir) => dir],
        ['evil-rel', (dir) => path.join(plugins.dir, '..', path.basename(outside.dir), path.basename(dir))],
        [
          'evil-link',
          (dir) => {
            const link = path.join(plugins.dir, 'evil-link');
            symlinkSync(dir, link);
            return link;
          },
        ],
      ];
      const f = flag('outside');
      for (const [name, sourcePath] of cases) {
        const dir = writePlugin(outside.dir, name, trap(name, f));
        const p = sourcePath(dir);
        await insert(name, { type: 'dynamic', path: p, source_path: p, status: 'active' });
      }
      for (const [name] of cases) {
        const b = await erroredWith(t, name, 'PH_ERR_PLUGIN_PATH_OUTSIDE');
        assert.equal(b.state, 'error');
        assert.match(b.last_error.message, /is outside PLUGINS_DIR/);
        assert.equal((await getJson(`${t.url}/${name}`)).status, 404);
        assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === name));
      }
      assert.equal(g[f], undefined, 'nothing from outside PLUGINS_DIR was evaluated');
      await assertOthersUntouched();
    });

    test('a serving plugin pointed outside PLUGINS_DIR keeps its version; without an artifact it is refused', async () => {
      const f = flag('repoint');
      const dir = writePlugin(outside.dir, 'target', trap('target', f));
      const before = await view(t, 'target');
      // with its published artifact still named, the node serves that artifact, never the outside source
      await sql('UPDATE plugins SET source_path = $1, path = $1 WHERE name = $2', [dir, 'target']);
      await sql("UPDATE plugins SET generation = generation + 1 WHERE name = 'target'");
      const reloaded = await waitFor(async () => {
        const v = await view(t, 'target');
        return v.serving?.loaded_at !== before.serving.loaded_at ? v : undefined;
      }, 'target to reload from its artifact');
      assert.equal(reloaded.serving.hash, before.serving.hash, 'the published artifact, not the outside source');
      assert.equal(reloaded.serving.from, 'artifact');
      assert.deepEqual((await getJson(`${t.url}/target`)).body, { plugin: 'target', version: '1.0.0' });
      // without an artifact to load by hash, the outside path is refused and the loaded version stays
      await sql('UPDATE plugins SET artifact_hash = NULL, generation = generation + 1 WHERE name = $1', ['target']);
      const b = await erroredWith(t, 'target', 'PH_ERR_PLUGIN_PATH_OUTSIDE');
      assert.equal(b.state, 'serving');
      assert.equal(b.serving.hash, before.serving.hash);
      assert.deepEqual((await getJson(`${t.url}/target`)).body, { plugin: 'target', version: '1.0.0' });
      assert.equal(g[f], undefined, 'the outside source was never evaluated');
      // pointing back inside repairs it
      const inside = path.join(plugins.dir, 'target');
      await sql('UPDATE plugins SET source_path = $1, path = $1 WHERE name = $2', [inside, 'target']);
      await waitFor(async () => (await view(t, 'target')).last_error === null, 'the error to clear');
      await assertOthersUntouched();
    });

    test('missing artifact: refused with a recorded error', async () => {
      await insert('ghost', { type: 'dynamic', status: 'active', artifact_hash: 'ffffffffffffffffffffffffffffffff' });
      const b = await erroredWith(t, 'ghost', 'PH_ERR_ARTIFACT_MISSING');
      assert.equal(b.state, 'error');
      assert.match(b.last_error.message, /artifact ffffffffffffffffffffffffffffffff is not in the artifact store/);
      await insert('nowhere', { type: 'dynamic', status: 'active', source_path: path.join(plugins.dir, 'nowhere') });
      const n = await erroredWith(t, 'nowhere', 'PH_ERR_PLUGIN_SOURCE_MISSING');
      assert.equal(n.state, 'error');
      await assertOthersUntouched();
    });

    test('an artifact hash that walks out of the artifacts directory is refused, nothing evaluated', async () => {
      const f = flag('artifact');
      const evil = path.join(outside.dir, 'evil-artifact');
      mkdirSync(evil, { recursive: true });
      const bundle = `${artifactHeader(ARTIFACT_FORMAT, 'evil')}globalThis[${JSON.stringify(f)}] = true;
  exports.newPlugin = () => ({ getMetadata: () => ({ name: 'sneaky', version: '1.0.0', description: '', author: '' }),
    initialize() {}, registerRoutes(s) { s.get('/sneaky', async () => ({ pwned: true })); }, cleanup() {} });
  `;
      writeFileSync(path.join(evil, 'x.cjs'), bundle);
      const hash = path.relative(t.config.artifactsDir, path.join(evil, 'x'));
      assert.ok(hash.startsWith('..'));
      await insert('sneaky', { type: 'dynamic', status: 'active', artifact_hash: hash });
      const b = await erroredWith(t, 'sneaky', 'PH_ERR_DESIRED_STATE_INVALID');
      assert.match(b.last_error.message, /artifact_hash .* is not a content hash/);
      assert.equal((await getJson(`${t.url}/sneaky`)).status, 404);
      assert.equal(g[f], undefined, 'the file outside the artifacts directory was never evaluated');
      await assertOthersUntouched();
    });

    test('every refused row is shown in GET /plugins as error; the healthy ones serve', async () => {
      const { body } = await getJson(`${t.url}/plugins`);
      const state = new Map(body.map((p: { name: string; state: string }) => [p.name, p.state]));
      for (const n of ['paused', 'wasm', 'impostor', 'evil-abs', 'evil-rel', 'evil-link', 'ghost', 'nowhere', 'sneaky'])
        assert.equal(state.get(n), 'error', n);
      for (const n of ['powertable', 'steady', 'target']) assert.equal(state.get(n), 'serving', n);
    });
  });

  onEachDatabase('restart with a source that no longer compiles', { concurrency: 1 }, (db) => {
    let plugins: { dir: string; cleanup(): void };
    let data: { dir: string; cleanup(): void };
    let t: TestHost | undefined;

    before(async () => {
      plugins = pluginsDirWithPowertable();
      data = tempDir('ph-data-');
    });
    after(async () => {
      await t?.close();
      plugins?.cleanup();
      data?.cleanup();
    });

    const start = () => startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, dataDir: data.dir });

    test('the last published artifact serves, with the compile error shown; a fixed source takes over', async () => {
      writePlugin(plugins.dir, 'phoenix', pluginSource({ name: 'phoenix', version: '1.0.0' }));
      t = await start();
      const first = await view(t, 'phoenix');
      assert.equal(first.state, 'serving');
      const goodHash = first.artifact_hash;
      assert.ok(goodHash);
      await t.close();
      t = undefined;

      writePlugin(
        plugins.dir,
        'phoenix',
        'import { definePlugin } from "plugin-host/sdk";\nexport const newPlugin = definePlugin(() => ({\n',
      );
      t = await start();
      const b = await view(t, 'phoenix');
      assert.equal(b.state, 'serving', JSON.stringify(b.last_error));
      assert.equal(b.serving.hash, goodHash);
      assert.equal(b.serving.from, 'artifact');
      assert.equal(b.last_error.code, 'PH_ERR_COMPILE_SYNTAX');
      assert.match(b.last_error.message, /^phoenix\/main\.ts:\d+:\d+: /);
      assert.equal(b.artifact_hash, goodHash, 'the row still names the last good artifact');
      assert.deepEqual((await getJson(`${t.url}/phoenix`)).body, { plugin: 'phoenix', version: '1.0.0' });
      assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === 'phoenix'));
      assert.equal((await view(t, 'powertable')).state, 'serving');

      // a periodic reconcile neither reloads nor forgets the error
      await t.host.manager.reconcileAll();
      const again = await view(t, 'phoenix');
      assert.equal(again.serving.loaded_at, b.serving.loaded_at);
      assert.equal(again.last_error.code, 'PH_ERR_COMPILE_SYNTAX');

      writePlugin(plugins.dir, 'phoenix', pluginSource({ name: 'phoenix', version: '2.0.0' }));
      await t.host.repo.bumpGeneration('phoenix');
      const fixed = await waitFor(async () => {
        const v = await view(t as TestHost, 'phoenix');
        return v.serving?.version === '2.0.0' ? v : undefined;
      }, 'the fixed source to serve');
      assert.equal(fixed.last_error, null);
      assert.equal(fixed.serving.from, 'source');
    });
  });
});
