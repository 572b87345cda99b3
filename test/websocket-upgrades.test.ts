// Connection upgrades on the data plane: `@fastify/websocket` in an inline plugin works as in a Fastify app of
// its own, through a blue/green reload (an open socket stays on the version that accepted it, until it is
// closed with 1001 once the drain time is over); an upgrade nobody takes is answered and closed, never left
// hanging; a worker cannot take one, so a version with a WebSocket route is refused there with a code.
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { writePlugin } from './support/plugin-sources.js';
import { getJson, ROOT, tempDir, waitFor } from './support/util.js';

const TOKEN = 'websocket-token-123';
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** An inline plugin with a WebSocket echo whose answers name the version, and a plain route saying the version. */
function socketsPlugin(version: string): string {
  return `import websocket from '@fastify/websocket';
import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'sockets', version: '${version}', description: 'echo', author: 'tests' }),
  initialize() {},
  async registerRoutes(server) {
    await server.register(websocket);
    server.get('/ws/echo', { websocket: true }, (socket) => {
      socket.on('message', (m) => socket.send('${version}:' + String(m)));
    });
    server.get('/ws/version', async () => ({ version: '${version}' }));
  },
  cleanup() {},
}));
`;
}

/** Opens a WebSocket and resolves once it is open (rejects with the HTTP status of a refused handshake). */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`handshake answered ${res.statusCode}`), { status: res.statusCode })),
    );
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (m) => resolve(String(m)));
    ws.once('close', () => reject(new Error('closed before answering')));
    ws.send(text);
  });
}

/** Writes `request` raw on a new connection and reads until the server closes it: what a hostile client sees. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.on('data', (d) => {
      text += String(d);
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

const upgradeTo = (url: string, extra = '') =>
  `GET ${url} HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

onEachDatabase('WebSocket upgrades', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let wsUrl: string;
  let port: number;

  before(async () => {
    plugins = tempDir('ph-plugins-');
    const dir = writePlugin(plugins.dir, 'sockets', socketsPlugin('1.0.0'));
    // the Fastify ecosystem's packages come from this project's own dev dependencies: nothing is fetched
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN, DRAIN_TIMEOUT_MS: '1500' } });
    wsUrl = t.url.replace('http:', 'ws:');
    port = Number(new URL(t.url).port);
    // the host finds the plugin in PLUGINS_DIR at start
    await waitFor(async () => (await getJson(`${t.url}/ws/version`)).body?.version === '1.0.0', 'sockets 1.0.0 to serve');
  });
  after(async () => {
    await t?.close();
    plugins?.cleanup();
  });

  test('an inline echo through a reload: the old socket stays on its version, then closes with 1001; a new one reaches the new version', async () => {
    const old = await open(`${wsUrl}/ws/echo`);
    assert.equal(await echo(old, 'a'), '1.0.0:a');
    const closed = new Promise<number>((resolve) => old.once('close', (code) => resolve(code)));

    writePlugin(plugins.dir, 'sockets', socketsPlugin('1.1.0'));
    const reload = await getJson(`${t.adminUrl}/plugins/sockets/reload`, {
      method: 'POST',
      headers: { authorization: AUTH.authorization },
    });
    assert.equal(reload.status, 200, JSON.stringify(reload.body));
    await waitFor(async () => (await getJson(`${t.url}/ws/version`)).body?.version === '1.1.0', 'sockets 1.1.0 to serve');

    assert.equal(await echo(old, 'b'), '1.0.0:b', 'the open socket is still served by the version that accepted it');
    const fresh = await open(`${wsUrl}/ws/echo`);
    assert.equal(await echo(fresh, 'c'), '1.1.0:c', 'a new socket reaches the new version');

    assert.equal(await closed, 1001, 'the replaced version closes its sockets with 1001 (going away) once the drain time is over');
    assert.equal(await echo(fresh, 'd'), '1.1.0:d', 'the new version keeps its socket');
    fresh.close();
  });

  test('an upgrade to a path no plugin serves is answered 404 and closed, never left hanging', async () => {
    await assert.rejects(open(`${wsUrl}/nobody/here`), (err: { status?: number }) => err.status === 404);
    const answer = await raw(port, upgradeTo('/nobody/here'));
    assert.match(answer, /^HTTP\/1\.1 404 /);
    assert.match(answer, /PH_ERR_NOT_FOUND/);
  });

  test('hostile upgrades: one with a body nobody takes is refused 400; an h2c probe of a host route gets its plain answer, then the connection closes', async () => {
    const bodied = await raw(port, upgradeTo('/nobody/here', 'content-length: 5\r\n').replace(/\r\n$/, '\r\nhello'));
    assert.match(bodied, /^HTTP\/1\.1 400 /);
    assert.match(bodied, /PH_ERR_BAD_REQUEST/);
    const h2c = await raw(
      port,
      'GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n',
    );
    assert.match(h2c, /^HTTP\/1\.1 200 /);
    assert.match(h2c, /connection: close/i);
    // the host still serves WebSockets after them
    const ws = await open(`${wsUrl}/ws/echo`);
    assert.equal(await echo(ws, 'e'), '1.1.0:e');
    ws.close();
  });

  test('moved to a worker, a version with a WebSocket route is refused with a code naming the route; the inline one keeps serving', async () => {
    const r = await getJson(`${t.adminUrl}/plugins/sockets/isolation`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify({ mode: 'worker' }),
    });
    const seen = await waitFor(
      async () => {
        const p = await getJson(`${t.url}/plugins/sockets`);
        const text = JSON.stringify(p.body);
        return text.includes('PH_ERR_UPGRADE_UNSUPPORTED') ? text : undefined;
      },
      `the refusal to be recorded (isolation answered ${r.status} ${JSON.stringify(r.body)})`,
    );
    assert.match(seen, /GET \/ws\/echo/, 'the error names the route');
    const p = await getJson(`${t.url}/plugins/sockets`);
    assert.equal(p.body.serving.runtime?.kind ?? p.body.serving.isolation, 'inline', JSON.stringify(p.body.serving));
    const ws = await open(`${wsUrl}/ws/echo`);
    assert.equal(await echo(ws, 'f'), '1.1.0:f', 'the inline version still takes WebSockets');
    ws.close();
  });
});
