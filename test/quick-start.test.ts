// The README's quick start as a new user runs it in a checkout: `npm start` (the compiled host, `serve`) with the
// embedded PGlite and the bundled `plugins/powertable`, then `curl /hello`; once with every plugin inline, once
// with every plugin in a worker thread and once in a process of its own (under the permission model). `.ci/run` runs this file on every supported Node line it does not run the
// whole suite on (see the README's development section), so each line proves that a fresh checkout serves.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const dirs: Array<{ cleanup(): void }> = [];
after(async () => {
  await killAllServers();
  for (const d of dirs) d.cleanup();
});

for (const mode of ['inline', 'worker', 'process'] as const) {
  test(`quick start on Node ${process.versions.node}: npm start serves GET /hello (PLUGIN_ISOLATION=${mode})`, {
    timeout: 180_000,
  }, async () => {
    // DATA_DIR: the README's ./data, but in a directory of the test's own (a checkout's ./data is the developer's)
    const data = tempDir('ph-quick-start-');
    dirs.push(data);
    const server = await startServer({
      name: `quick-start-${mode}`,
      env: { DATA_DIR: data.dir, PLUGIN_ISOLATION: mode },
      readyTimeoutMs: 120_000,
    });
    try {
      const hello = await waitFor(
        async () => {
          const r = await getJson(`${server.url}/hello`);
          return r.status === 200 ? r : undefined;
        },
        `GET /hello answers 200 (${server.tail()})`,
        120_000,
        100,
      );
      assert.equal(hello.body.plugin, 'powertable');
      assert.match(hello.body.message, /GET \/hello/);
      // the mode asked for is the one serving: a worker or process start that fell back inline would not pass
      const row = await getJson(`${server.adminUrl}/plugins/powertable`);
      assert.equal(row.status, 200, JSON.stringify(row.body));
      assert.equal(row.body.serving?.isolation, mode, JSON.stringify(row.body));
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
}
