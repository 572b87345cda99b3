import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { getJson } from './support/util.js';

const TOKEN = 'hostile-token-123';
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: any;
}

/** Sends bytes as they are (no client-side normalisation of the URL or method) and reads the answer until the server closes. */
function raw(url: string, request: string): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(Number(port), hostname, () => s.end(request));
    s.setTimeout(10_000, () => s.destroy(new Error('no answer')));
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      let body: unknown = rest.join('\r\n\r\n');
      try {
        body = JSON.parse(body as string);
      } catch {
        /* not JSON */
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
  });
}

/** Streams `bytes` of body (with or without Content-Length), stopping as soon as the server answers. */
function bigPost(url: string, bytes: number, headers: Record<string, string>, chunked: boolean): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers, ...(chunked ? {} : { 'content-length': String(bytes) }) },
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as Record<string, string>,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
      });
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(1 << 20, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < bytes && !answered && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered && !req.destroyed) req.end();
    };
    pump();
  });
}

function assertProblem(r: { status: number; body: any; headers: Headers | Record<string, string> }, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  const ct = r.headers instanceof Headers ? r.headers.get('content-type') : r.headers['content-type'];
  assert.match(ct ?? '', /^application\/problem\+json/);
  assert.equal(r.body.code, code);
  assert.equal(r.body.status, status);
}

onEachDatabase('hostile HTTP', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let stateBefore: unknown;

  const desiredState = () =>
    sqlByHand(t, db.url, 'SELECT name, status, generation, artifact_hash, updated_at::text FROM plugins ORDER BY name');

  before(async () => {
    plugins = pluginsDirWithPowertable();
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
    stateBefore = await desiredState();
  });
  after(async () => {
    await t?.close();
    plugins.cleanup();
  });

  test('admin calls without a token, with a wrong one, or with the token in the wrong place', async () => {
    const tries: Record<string, string>[] = [
      {},
      { authorization: 'Bearer nope-nope-nope' },
      { authorization: `bearer  ${TOKEN} extra` },
      { 'x-admin-token': TOKEN },
      { 'proxy-authorization': `Bearer ${TOKEN}` },
      { authorization: `Token ${TOKEN}` },
    ];
    for (const headers of tries) {
      for (const [method, path] of [
        ['POST', '/plugins/powertable/disable'],
        ['POST', '/plugins/powertable/toggle'],
        ['DELETE', '/plugins/powertable'],
        ['POST', '/plugins'],
      ]) {
        assertProblem(await getJson(`${t.adminUrl}${path}`, { method, headers }), 401, 'PH_ERR_UNAUTHORIZED');
      }
    }
    assertProblem(
      await getJson(`${t.adminUrl}/plugins/powertable/disable?access_token=${TOKEN}`, { method: 'POST' }),
      401,
      'PH_ERR_UNAUTHORIZED',
    );
  });

  test('path traversal in names and paths', async () => {
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    for (const target of ['/plugins/../../etc/passwd/enable', '/plugins/powertable/../../x/reload', '/plugins/./powertable/../x/disable']) {
      const r = await raw(t.adminUrl, `POST ${target} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
      assertProblem(r, 404, 'PH_ERR_NOT_FOUND');
    }
    // sent raw: a WHATWG client would resolve the dot segments itself
    for (const name of ['..%2F..%2Fetc', '%2e%2e', '.%2e', 'a%00b', '%2Fetc%2Fpasswd', 'power%5Ctable', '%2e%2e%2f%2e%2e%2fetc']) {
      const r = await raw(t.adminUrl, `POST /plugins/${name}/enable HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
      assertProblem(r, 400, 'PH_ERR_PLUGIN_NAME_INVALID');
    }
    const badEncoding = await raw(t.adminUrl, `POST /plugins/%zz/enable HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
    assertProblem(badEncoding, 400, 'PH_ERR_MALFORMED_REQUEST');
    for (const p of ['../../etc', '/etc', '..', 'powertable/../..', '....//....//etc']) {
      const r = await getJson(`${t.adminUrl}/plugins`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ path: p }),
      });
      assert.ok(r.status === 400 || r.status === 422, `${p}: ${r.status}`);
      assert.ok(['PH_ERR_PLUGIN_PATH_OUTSIDE', 'PH_ERR_PLUGIN_NO_ENTRY'].includes(r.body.code), `${p}: ${r.body.code}`);
    }
  });

  test('1 MB and 100 MB bodies, declared or chunked, with and without a token', async () => {
    assertProblem(await bigPost(`${t.adminUrl}/plugins`, 1 << 20, AUTH, false), 413, 'PH_ERR_PAYLOAD_TOO_LARGE');
    assertProblem(await bigPost(`${t.adminUrl}/plugins`, 1 << 20, AUTH, true), 413, 'PH_ERR_PAYLOAD_TOO_LARGE');
    assertProblem(await bigPost(`${t.adminUrl}/plugins/powertable/reload`, 100 << 20, AUTH, false), 413, 'PH_ERR_PAYLOAD_TOO_LARGE');
    assertProblem(await bigPost(`${t.adminUrl}/plugins`, 100 << 20, AUTH, true), 413, 'PH_ERR_PAYLOAD_TOO_LARGE');
    assertProblem(await bigPost(`${t.adminUrl}/plugins`, 100 << 20, {}, false), 401, 'PH_ERR_UNAUTHORIZED');
    // a core route that takes no body, and an unknown route: the body limit answers first
    assertProblem(await bigPost(`${t.url}/healthz`, 100 << 20, {}, false), 413, 'PH_ERR_PAYLOAD_TOO_LARGE');
    assertProblem(await bigPost(`${t.url}/nowhere`, 100 << 20, {}, true), 413, 'PH_ERR_PAYLOAD_TOO_LARGE');
  });

  test('malformed JSON and wrong media types', async () => {
    const post = (body: string, type = 'application/json') =>
      getJson(`${t.adminUrl}/plugins`, { method: 'POST', headers: { ...AUTH, 'content-type': type }, body });
    for (const body of ['{', '{"path": "x",}', 'null', '"x"', '{"__proto__": {"polluted": 1}, "path": "x"}', '\u0000']) {
      const r = await post(body);
      assert.ok(r.status === 400, `${JSON.stringify(body)} answered ${r.status}`);
      assert.ok(['PH_ERR_INVALID_JSON', 'PH_ERR_VALIDATION', 'PH_ERR_BAD_REQUEST'].includes(r.body.code), r.body.code);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assertProblem(await post('path=x', 'application/x-www-form-urlencoded'), 415, 'PH_ERR_UNSUPPORTED_MEDIA_TYPE');
    assertProblem(await post('', 'application/json'), 400, 'PH_ERR_INVALID_JSON');
  });

  test('unknown and unsupported methods', async () => {
    const r1 = await raw(t.url, 'FOO /plugins HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assertProblem(r1, 400, 'PH_ERR_MALFORMED_REQUEST');
    const r2 = await raw(t.url, 'PROPFIND /plugins HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assertProblem(r2, 405, 'PH_ERR_METHOD_NOT_ALLOWED');
    assert.match(r2.headers.allow ?? '', /GET/);
    assertProblem(await getJson(`${t.adminUrl}/plugins/powertable`, { method: 'PATCH', headers: AUTH }), 405, 'PH_ERR_METHOD_NOT_ALLOWED');
    assertProblem(await getJson(`${t.adminUrl}/plugins/powertable/enable`, { method: 'GET' }), 405, 'PH_ERR_METHOD_NOT_ALLOWED');
    assertProblem(await getJson(`${t.adminUrl}/metrics`, { method: 'DELETE' }), 405, 'PH_ERR_METHOD_NOT_ALLOWED');
    const garbage = await raw(t.url, '\u0001\u0002garbage\r\n\r\n');
    assertProblem(garbage, 400, 'PH_ERR_MALFORMED_REQUEST');
  });

  test('very long URLs', async () => {
    assertProblem(await getJson(`${t.url}/${'a'.repeat(9000)}`), 414, 'PH_ERR_URL_TOO_LONG');
    assertProblem(await getJson(`${t.url}/plugins?status=${'x'.repeat(9000)}`), 414, 'PH_ERR_URL_TOO_LONG');
    assertProblem(
      await getJson(`${t.adminUrl}/plugins/${'a'.repeat(500)}/enable`, { method: 'POST', headers: AUTH }),
      414,
      'PH_ERR_URL_TOO_LONG',
    );
    assertProblem(
      await getJson(`${t.adminUrl}/plugins/${'a'.repeat(150)}/enable`, { method: 'POST', headers: AUTH }),
      400,
      'PH_ERR_PLUGIN_NAME_INVALID',
    );
    const huge = await raw(t.url, `GET /${'b'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assertProblem(huge, 431, 'PH_ERR_HEADERS_TOO_LARGE');
  });

  test('nothing changed and the server still answers', async () => {
    assert.deepEqual(await desiredState(), stateBefore);
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${t.url}/readyz`)).status, 200);
    assert.equal((await getJson(`${t.url}/hello`)).body.plugin, 'powertable');
    const ok = await getJson(`${t.adminUrl}/plugins/powertable/reload`, { method: 'POST', headers: AUTH });
    assert.equal(ok.status, 200, 'a legitimate admin call still works');
  });
});
