// Route ownership: a plugin route that could answer URLs another active plugin's route answers is refused when
// its version loads (the version serving keeps serving), unless ROUTE_OVERLAP_ALLOW names the plugin.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { routesOverlap } from '../src/routing/route-overlap.js';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { routesPlugin, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

describe('which routes overlap', () => {
  const cases: Array<[a: string, b: string, overlap: boolean]> = [
    ['/victim/:id', '/victim/admin', true],
    ['/victim/admin', '/victim/:id', true],
    ['/victim/:id(^\\d+$)', '/victim/admin', false],
    ['/victim/:id(^\\d+$)', '/victim/42', true],
    ['/victim/*', '/victim/a/b', true],
    ['/:kind/:id', '/victim/admin', true],
    ['/victim/:id', '/attacker/:id', false],
    ['/victim', '/victim/', false],
    ['/victim/:id', '/victim/:id/more', false],
    ['/v/:id?', '/v', true],
    ['/file-:name.txt', '/file-a.txt', true],
    ['/file-:name.txt', '/file-a.json', false],
  ];
  for (const [a, b, overlap] of cases) {
    test(`${a} and ${b}: ${overlap ? 'overlap' : 'do not overlap'}`, () => {
      assert.equal(routesOverlap({ method: 'GET', url: a }, { method: 'GET', url: b }), overlap);
    });
  }
  test('different methods never overlap', () => {
    assert.equal(routesOverlap({ method: 'GET', url: '/v/:id' }, { method: 'POST', url: '/v/admin' }), false);
  });
});

for (const allowed of [false, true]) {
  onEachDatabase(`route ownership${allowed ? ' with ROUTE_OVERLAP_ALLOW' : ''}`, (db) => {
    let t: TestHost;
    let plugins: { dir: string; cleanup(): void };
    let attackerDir: string;

    before(async () => {
      plugins = tempDir('ph-plugins-');
      writePlugin(plugins.dir, 'victim', routesPlugin('victim', [['GET', '/victim/:id']]));
      attackerDir = writePlugin(plugins.dir, 'attacker', routesPlugin('attacker', [['GET', '/attacker']]));
      t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: allowed ? { ROUTE_OVERLAP_ALLOW: 'attacker' } : {} });
    });
    after(async () => {
      await t?.close();
      plugins?.cleanup();
    });

    test(
      allowed
        ? 'a plugin the operator allows to overlap takes /victim/admin'
        : "a version whose route takes URLs of another plugin's route is refused; the old version keeps serving",
      async () => {
        assert.deepEqual((await getJson(`${t.url}/victim/admin`)).body, { captured: 'victim' });
        const loadedAt = (await getJson(`${t.url}/plugins/attacker`)).body.serving.loaded_at;
        writeFileSync(
          path.join(attackerDir, 'main.ts'),
          routesPlugin(
            'attacker',
            [
              ['GET', '/attacker'],
              ['GET', '/victim/admin'],
            ],
            '2.0.0',
          ),
        );
        await t.host.repo.bumpGeneration('attacker');
        const p = await waitFor(async () => {
          const b = (await getJson(`${t.url}/plugins/attacker`)).body;
          return b.last_error !== null || b.serving?.loaded_at !== loadedAt ? b : undefined;
        }, 'the reload to settle');
        if (allowed) {
          assert.equal(p.last_error, null, JSON.stringify(p.last_error));
          assert.deepEqual((await getJson(`${t.url}/victim/admin`)).body, { captured: 'attacker' });
          return;
        }
        assert.equal(p.last_error.code, 'PH_ERR_ROUTE_OVERLAP', JSON.stringify(p.last_error));
        assert.match(
          p.last_error.message,
          /route GET \/victim\/admin could answer URLs that route GET \/victim\/:id of plugin "victim" answers/,
        );
        assert.equal(p.serving.version, '1.0.0', 'the old version keeps serving');
        assert.deepEqual((await getJson(`${t.url}/victim/admin`)).body, { captured: 'victim' });
        assert.deepEqual((await getJson(`${t.url}/attacker`)).body, { captured: 'attacker' });
      },
    );
  });
}
