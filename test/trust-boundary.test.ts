// The host's routes, secrets, removals and artifacts belong to the host: checked against real server
// processes, on the embedded database and on PostgreSQL.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { createTestDatabase, type DbKind, type TestDatabase } from './support/databases.js';
import { pluginsDirWithPowertable, routesPlugin, writePlugin } from './support/plugin-sources.js';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'trust-boundary-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** A plugin answering what it can read of the host's secrets. */
function peekPlugin(name: string): string {
  return `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: ${JSON.stringify(name)}, version: '1.0.0', description: 'd', author: 'a' }),
  initialize() {},
  registerRoutes(server) {
    server.get('/peek', async () => ({
      admin: process.env.ADMIN_TOKEN ?? null,
      adminFile: process.env.ADMIN_TOKEN_FILE ?? null,
      db: process.env.DATABASE_URL ?? null,
      pgpassword: process.env.PGPASSWORD ?? null,
    }));
  },
  cleanup() {},
}));
`;
}

const CAPTURING: Array<[name: string, method: string, url: string]> = [
  ['cap-delete', 'DELETE', '/:a/powertable'],
  ['cap-head', 'HEAD', '/*'],
  ['cap-regex', 'GET', '/:kind/:id(^\\d+$)'],
  ['cap-accidental', 'GET', '/:kind/:id'],
];

for (const kind of ['pglite', 'postgres'] as DbKind[]) {
  describe(`trust boundary on ${kind} (server processes)`, () => {
    const temps: Array<{ cleanup(): void }> = [];
    let db: TestDatabase | undefined;

    after(async () => {
      await killAllServers();
      await db?.drop();
      for (const t of temps) t.cleanup();
    });

    async function setup(): Promise<{ plugins: string; env: Record<string, string> }> {
      const plugins = pluginsDirWithPowertable();
      const data = tempDir('ph-data-');
      temps.push(plugins, data);
      const env: Record<string, string> = { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir, ADMIN_TOKEN: TOKEN };
      if (kind === 'postgres') {
        db = await createTestDatabase();
        env.DATABASE_URL = db.url;
      }
      return { plugins: plugins.dir, env };
    }

    test("plugins cannot capture the host's routes; the host answers them, with the admin's token", async () => {
      const { plugins, env } = await setup();
      for (const [name, method, url] of CAPTURING) writePlugin(plugins, name, routesPlugin(name, [[method, url]]));
      writePlugin(plugins, 'evolving', routesPlugin('evolving', [['GET', '/evolving']]));
      const s = await startServer({ name: `trust-routes-${kind}`, env });
      try {
        for (const [name, method, url] of CAPTURING) {
          const p = await waitFor(async () => {
            const b = (await getJson(`${s.url}/plugins/${name}`)).body;
            return b.state === 'error' ? b : undefined;
          }, `${name} to be refused`);
          assert.equal(p.last_error.code, 'PH_ERR_ROUTE_RESERVED', `${name}: ${p.last_error.message}`);
          assert.ok(p.last_error.message.includes(`route ${method} ${url} could match /`), p.last_error.message);
        }
        // a failed reload into a capturing version keeps the old one serving
        assert.deepEqual((await getJson(`${s.url}/evolving`)).body, { captured: 'evolving' });
        writePlugin(
          plugins,
          'evolving',
          routesPlugin(
            'evolving',
            [
              ['GET', '/evolving'],
              ['DELETE', '/:a/powertable'],
            ],
            '2.0.0',
          ),
        );
        const reload = await getJson(`${s.adminUrl}/plugins/evolving/reload`, { method: 'POST', headers: AUTH });
        assert.equal(reload.status, 200, JSON.stringify(reload.body));
        assert.equal(reload.body.state, 'serving');
        assert.equal(reload.body.serving.version, '1.0.0');
        assert.equal(reload.body.last_error.code, 'PH_ERR_ROUTE_RESERVED');

        // the host answers its own paths, whatever a plugin registered
        const head = await fetch(`${s.url}/healthz`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal((await fetch(`${s.adminUrl}/metrics`, { method: 'HEAD' })).status, 200);
        const numeric = await getJson(`${s.url}/plugins/123`);
        assert.equal(numeric.status, 404);
        assert.equal(numeric.body.code, 'PH_ERR_PLUGIN_NOT_FOUND');
        const del = await getJson(`${s.adminUrl}/plugins/powertable`, { method: 'DELETE', headers: AUTH });
        assert.equal(del.status, 200, JSON.stringify(del.body));
        assert.equal(del.body.action, 'remove');
        assert.equal((await getJson(`${s.url}/plugins/powertable`)).status, 404, 'the row is gone: the host handled the DELETE');
        assert.equal((await fetch(`${s.url}/hello`)).status, 404);
      } finally {
        await s.stop();
      }
    });

    test("plugin code reads none of the host's secrets from the environment", async () => {
      const { plugins, env } = await setup();
      writePlugin(plugins, 'peek', peekPlugin('peek'));
      const tokenFile = tempDir('ph-secret-');
      temps.push(tokenFile);
      writeFileSync(path.join(tokenFile.dir, 'token'), `${TOKEN}\n`);
      const { ADMIN_TOKEN: _unused, ...rest } = env;
      const variants: Array<[what: string, env: Record<string, string>]> = [
        // the token from a file (Docker secrets), the database URL from the variable
        ['token file, inline', { ...rest, ADMIN_TOKEN_FILE: path.join(tokenFile.dir, 'token'), PGPASSWORD: 'not-for-plugins' }],
        // the token in the variable itself: removing the _FILE form alone would leave it readable
        ['token variable, inline', { ...env, PGPASSWORD: 'not-for-plugins' }],
        ['token variable, worker', { ...env, PGPASSWORD: 'not-for-plugins', PLUGIN_ISOLATION: 'worker' }],
      ];
      for (const [what, variant] of variants) {
        const s = await startServer({ name: `trust-secrets-${kind}`, env: variant });
        try {
          const peek = await waitFor(async () => {
            const r = await getJson(`${s.url}/peek`);
            return r.status === 200 ? r.body : undefined;
          }, `peek to serve (${what})`);
          assert.deepEqual(peek, { admin: null, adminFile: null, db: null, pgpassword: null }, what);
          // the host still has them: the admin API takes the token it read
          assert.equal((await getJson(`${s.adminUrl}/plugins/peek/disable`, { method: 'POST', headers: AUTH })).status, 200, what);
          assert.equal(
            (await getJson(`${s.adminUrl}/plugins/peek/enable`, { method: 'POST', headers: { authorization: 'Bearer wrong-token' } }))
              .status,
            401,
            what,
          );
          assert.equal((await getJson(`${s.adminUrl}/plugins/peek/enable`, { method: 'POST', headers: AUTH })).status, 200, what);
        } finally {
          await s.stop();
        }
      }
    });

    test('a removed plugin stays removed across restarts, discovery and watch mode, until registered explicitly', async () => {
      const { plugins, env } = await setup();
      let s = await startServer({ name: `trust-remove-${kind}`, env });
      try {
        assert.equal((await fetch(`${s.url}/hello`)).status, 200);
        const del = await getJson(`${s.adminUrl}/plugins/powertable`, { method: 'DELETE', headers: AUTH });
        assert.equal(del.status, 200);
        await s.stop();
        s = await startServer({ name: `trust-remove-${kind}-2`, env: { ...env, WATCH: '1', WATCH_DEBOUNCE_MS: '50' } });
        assert.equal((await getJson(`${s.url}/plugins/powertable`)).status, 404, 'not registered again by discovery');
        assert.equal((await fetch(`${s.url}/hello`)).status, 404);
        const removed = await getJson(`${s.url}/plugins?removed=true`);
        assert.equal(removed.status, 200);
        assert.deepEqual(
          removed.body.map((r: { name: string; removed: boolean }) => [r.name, r.removed]),
          [['powertable', true]],
        );
        assert.match(removed.body[0].removed_by, /admin API/);
        // watch mode sees the directory change and leaves it removed
        const main = path.join(plugins, 'powertable', 'main.ts');
        writeFileSync(main, `${readFileSync(main, 'utf8')}\n// touched\n`);
        await s.waitForLog((l) => String(l.msg).includes('plugin powertable was removed'), 'watch mode to leave it removed');
        assert.equal((await getJson(`${s.url}/plugins/powertable`)).status, 404);
        // an explicit registration brings it back and forgets the removal
        const reg = await getJson(`${s.adminUrl}/plugins`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: JSON.stringify({ path: 'powertable' }),
        });
        assert.equal(reg.status, 201, JSON.stringify(reg.body));
        assert.equal((await fetch(`${s.url}/hello`)).status, 200);
        assert.deepEqual((await getJson(`${s.url}/plugins?removed=true`)).body, []);
      } finally {
        await s.stop();
      }
    });

    // Each deadline alone: the request deadline is far longer than the header deadline when headers never
    // complete, so a server that ignored HEADERS_TIMEOUT_MS would keep the connection past the 20 s bound.
    const slowCases = (token: string) => [
      {
        deadlines: { REQUEST_TIMEOUT_MS: '1500', HEADERS_TIMEOUT_MS: '1000' },
        // a body that never completes, on a route that reads it
        partial: `POST /plugins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pa`,
      },
      {
        deadlines: { REQUEST_TIMEOUT_MS: '60000', HEADERS_TIMEOUT_MS: '1000' },
        partial: 'GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ', // headers that never complete
      },
    ];

    test('a slow client is answered 408 and cut off by the request and header deadlines', async () => {
      const { env } = await setup();
      for (const { deadlines, partial } of slowCases(TOKEN)) {
        const s = await startServer({ name: `trust-slow-${kind}`, env: { ...env, ...deadlines } });
        try {
          const { port } = new URL(s.url);
          const answer = await new Promise<string>((resolve, reject) => {
            const sock = net.connect(Number(port), '127.0.0.1', () => sock.write(partial));
            let got = '';
            sock.setEncoding('utf8');
            sock.on('data', (c: string) => {
              got += c;
            });
            sock.on('close', () => resolve(got));
            sock.on('error', reject);
            // a bound on waiting, far above the deadlines: the server must have closed long before
            setTimeout(() => {
              sock.destroy();
              reject(new Error(`the server kept a slow connection open (got ${JSON.stringify(got)})`));
            }, 20_000).unref();
          });
          assert.match(answer, /^HTTP\/1\.1 408 /, answer);
          assert.match(answer, /PH_ERR_REQUEST_TIMEOUT/);
          assert.equal((await fetch(`${s.url}/hello`)).status, 200, 'other clients are served');
        } finally {
          await s.stop();
        }
      }
    });
  });
}
