/**
 * The type-check worker is started ahead only on a first start that will check (no artifact built yet, a
 * plugin directory to compile): a restart with its artifacts, or an empty plugins directory, never loads
 * TypeScript for it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Compiler } from '../src/compiler/index.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { tempDir } from './support/util.js';

describe('checker warm-up on a first start', () => {
  const dirs: Array<{ cleanup(): void }> = [];
  after(() => {
    for (const d of dirs) d.cleanup();
  });

  function compilerWith(o: { plugin: boolean; artifact: boolean }): Compiler {
    const plugins = tempDir('ph-warm-plugins-');
    const artifacts = tempDir('ph-warm-artifacts-');
    dirs.push(plugins, artifacts);
    if (o.plugin) writePlugin(plugins.dir, 'warm', pluginSource({ name: 'warm' }));
    if (o.artifact) {
      mkdirSync(artifacts.dir, { recursive: true });
      writeFileSync(path.join(artifacts.dir, `${'a'.repeat(64)}.cjs`), '');
    }
    return new Compiler({ artifactsDir: artifacts.dir, pluginsDir: plugins.dir, typecheck: true, checkInWorker: true });
  }

  test('a first start with a plugin to check starts the worker ahead', async () => {
    const c = compilerWith({ plugin: true, artifact: false });
    assert.equal(c.checkerRunning, false, 'nothing runs before it is asked');
    c.warmUpIfFirstStart();
    assert.equal(c.checkerRunning, true);
    await c.close();
  });

  test('a restart with artifacts, or nothing to compile, starts nothing', async () => {
    for (const o of [
      { plugin: true, artifact: true },
      { plugin: false, artifact: false },
    ]) {
      const c = compilerWith(o);
      c.warmUpIfFirstStart();
      assert.equal(c.checkerRunning, false, JSON.stringify(o));
      await c.close();
    }
  });
});
