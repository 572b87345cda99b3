// An uploaded plugin's unpacked sources live in the data directory: an edit of that tree (a changed file, an
// added one) is neither compiled nor served on the next reload; the tree is unpacked again from the stored
// archive, whose digest is checked.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { packDir } from './support/archives.js';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'upload-tamper-token';

onEachDatabase('tampered unpacked sources', (db) => {
  let h: TestHost;
  const plugins = tempDir('ph-tamper-plugins-');
  const work = tempDir('ph-tamper-work-');

  before(async () => {
    h = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
  });
  after(async () => {
    await h?.close();
    plugins.cleanup();
    work.cleanup();
  });

  test('a reload compiles the stored archive, not an edited unpacked tree', async () => {
    const dir = writePlugin(work.dir, 'up-tamper', pluginSource({ name: 'up-tamper' }));
    const put = await getJson(`${h.adminUrl}/plugins/up-tamper/source`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/gzip' },
      body: await packDir(dir),
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.deepEqual((await getJson(`${h.url}/up-tamper`)).body, { plugin: 'up-tamper', version: '1.0.0' });

    const row = await h.host.repo.getByName('up-tamper');
    const archive = row?.sourceArchive as string;
    const unpacked = path.join(h.config.dataDir, 'sources', archive, 'up-tamper');
    const main = path.join(unpacked, 'main.ts');
    assert.ok(existsSync(main), main);
    writeFileSync(main, pluginSource({ name: 'up-tamper', version: '6.6.6', route: '/up-tamper' }));
    writeFileSync(path.join(unpacked, 'extra.ts'), 'export const planted = true;\n');

    const loadedAt = (await getJson(`${h.url}/plugins/up-tamper`)).body.serving.loaded_at;
    // a reload recompiles from source (`POST /plugins/:name/reload`, `plugin-host reload`)
    const reload = await getJson(`${h.adminUrl}/plugins/up-tamper/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.ok(reload.status < 300, JSON.stringify(reload.body));
    await waitFor(async () => (await getJson(`${h.url}/plugins/up-tamper`)).body.serving?.loaded_at !== loadedAt, 'the reload');
    assert.deepEqual((await getJson(`${h.url}/up-tamper`)).body, { plugin: 'up-tamper', version: '1.0.0' }, 'the uploaded code serves');
    assert.ok(!readFileSync(main, 'utf8').includes('6.6.6'), 'the tree was unpacked again from the archive');
    assert.ok(!existsSync(path.join(unpacked, 'extra.ts')), 'the planted file is gone');
  });
});
