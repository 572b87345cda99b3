// A host whose `node` the plugin user may not execute (installed under root's closed home, say): a process plugin
// cannot start. The load fails at once with a message naming the binary and the user, the host serves everything
// else (the load's own time limit, 60 s here, is longer than the test waits).
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const temps: Array<{ cleanup(): void }> = [];
after(async () => {
  await killAllServers();
  for (const t of temps) t.cleanup();
});

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

test('a plugin process that cannot be started fails its load at once, saying why; the host serves the rest', {
  skip: !asRoot && 'needs root (plugins then run as nobody)',
}, async () => {
  const closed = tempDir('ph-closed-');
  const plugins = pluginsDirWithPowertable();
  const data = tempDir('ph-data-');
  temps.push(closed, plugins, data);
  // a copy of this node in a directory only root may enter
  const bin = path.join(closed.dir, 'bin');
  mkdirSync(bin);
  const node = path.join(bin, 'node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  chmodSync(closed.dir, 0o700);
  writePlugin(plugins.dir, 'boxed', pluginSource({ name: 'boxed', route: '/boxed' }));
  const s = await startServer({
    name: 'spawn-refused',
    execPath: node,
    env: { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir, PLUGIN_ISOLATION: 'process', HOOK_TIMEOUT_MS: '60000' },
  });
  const boxed = await waitFor(async () => {
    const r = (await getJson(`${s.url}/plugins/boxed`)).body;
    return r.state === 'error' ? r : undefined;
  }, 'boxed to fail its load');
  assert.match(boxed.last_error.message, /could not start .*as uid \d+.*EACCES/, JSON.stringify(boxed.last_error));
  assert.equal((await getJson(`${s.url}/boxed`)).status, 404);
  await s.stop();
});
