// PUT /plugins/:name/source on an in-process host: new plugin (201), new version (200), compile failures (422 with
// file:line:column, nothing stored), a plugin importing an npm package (from a directory and from an upload), and
// every hostile archive refused with its code, nothing written outside the unpack directory, nothing stored.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { greetingPluginSource, packDir, rawTarGz, writeTinyPackage } from './support/archives.js';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir } from './support/util.js';

const TOKEN = 'upload-test-token';

onEachDatabase('plugin uploads', (db) => {
  let h: TestHost;
  const plugins = tempDir('ph-up-plugins-');
  const work = tempDir('ph-up-work-');

  before(async () => {
    h = await startTestHost({
      ...db.hostOptions,
      pluginsDir: plugins.dir,
      env: { ADMIN_TOKEN: TOKEN, UPLOAD_LIMIT_MB: '1', UPLOAD_MAX_ENTRIES: '50', UPLOAD_MAX_UNPACKED_MB: '2' },
    });
  });
  after(async () => {
    await h?.close();
    plugins.cleanup();
    work.cleanup();
  });

  const put = (name: string, body: Buffer, headers: Record<string, string> = {}) =>
    getJson(`${h.adminUrl}/plugins/${name}/source`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/gzip', ...headers },
      body,
    });
  const count = async (sql: string): Promise<number> => Number(((await sqlByHand(h, db.url, sql)) as Array<{ n: number }>)[0]?.n);
  const stored = () => count('SELECT count(*)::int AS n FROM plugin_sources');
  const sourcesRoot = () => path.join(h.config.dataDir, 'sources');

  test('a new plugin is created (201) and served; a new version answers 200 and replaces it', async () => {
    const dir = writePlugin(work.dir, 'up-hello', pluginSource({ name: 'up-hello', version: '1.0.0' }));
    const first = await put('up-hello', await packDir(dir));
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.version, '1.0.0');
    assert.equal((await getJson(`${h.url}/up-hello`)).body.version, '1.0.0');

    writePlugin(work.dir, 'up-hello', pluginSource({ name: 'up-hello', version: '1.1.0' }));
    const second = await put('up-hello', await packDir(dir));
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal((await getJson(`${h.url}/up-hello`)).body.version, '1.1.0');
    assert.equal(await count("SELECT count(*)::int AS n FROM plugin_sources WHERE plugin_name = 'up-hello'"), 2);
    // the row names the archive, and no source directory
    const row = (await sqlByHand(h, db.url, "SELECT source_archive, source_path FROM plugins WHERE name = 'up-hello'")) as Array<
      Record<string, string | null>
    >;
    assert.match(String(row[0]?.source_archive), /^[0-9a-f]{64}$/);
    assert.equal(row[0]?.source_path, null);
  });

  test('a plugin that does not type-check answers 422 with file:line:column; nothing is stored or registered', async () => {
    const before = await stored();
    const dir = writePlugin(work.dir, 'up-broken', pluginSource({ name: 'up-broken', factory: '  const n: number = "text";' }));
    const r = await put('up-broken', await packDir(dir));
    assert.equal(r.status, 422);
    assert.equal(r.body.code, 'PH_ERR_COMPILE_TYPE');
    assert.match(r.body.detail, /up-broken\/main\.ts:\d+:\d+/);
    assert.equal(await stored(), before);
    assert.equal((await getJson(`${h.url}/plugins/up-broken`)).status, 404);
    assert.deepEqual(
      readdirSync(sourcesRoot()).filter((d) => d.startsWith('.')),
      [],
    );
  });

  test('the name in the URL must equal the metadata name', async () => {
    const dir = writePlugin(work.dir, 'up-named', pluginSource({ name: 'up-named' }));
    const r = await put('up-other', await packDir(dir));
    assert.equal(r.status, 422);
    assert.equal(r.body.code, 'PH_ERR_METADATA_INVALID');
    assert.equal((await getJson(`${h.url}/plugins/up-other`)).status, 404);
  });

  test('a plugin importing an npm package from its node_modules: served from a directory and from an upload', async () => {
    // from a directory inside PLUGINS_DIR
    const local = writePlugin(plugins.dir, 'dep-local', greetingPluginSource('dep-local'));
    writeTinyPackage(local);
    const reg = await getJson(`${h.adminUrl}/plugins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'dep-local' }),
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal((await getJson(`${h.url}/dep-local`)).body.message, 'hello dep-local from tiny-greet');

    // uploaded with its node_modules
    const up = writePlugin(work.dir, 'dep-up', greetingPluginSource('dep-up'));
    writeTinyPackage(up);
    const r = await put('dep-up', await packDir(up, true));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal((await getJson(`${h.url}/dep-up`)).body.message, 'hello dep-up from tiny-greet');

    // without it: a compile error naming the import
    const missing = writePlugin(work.dir, 'dep-missing', greetingPluginSource('dep-missing', 'not-installed-pkg'));
    const m = await put('dep-missing', await packDir(missing));
    assert.equal(m.status, 422);
    assert.equal(m.body.code, 'PH_ERR_COMPILE_RESOLVE');
    assert.match(m.body.detail, /not-installed-pkg/);
    assert.match(m.body.detail, /dep-missing\/main\.ts:2:\d+/);
  });

  test('hostile archives are refused with their code; nothing is written outside, stored or registered', async () => {
    const mark = `escaped-${randomBytes(6).toString('hex')}`;
    const main = pluginSource({ name: 'evil' });
    const file = (name: string, data = 'x') => ({ name, flag: '0', data });
    const cases: Array<{ what: string; body: Buffer; status: number; code: string; headers?: Record<string, string> }> = [
      { what: '..', body: rawTarGz([file('main.ts', main), file(`../../${mark}`)]), status: 400, code: 'PH_ERR_UPLOAD_UNSAFE_PATH' },
      { what: 'deep ..', body: rawTarGz([file(`a/../../../../../../${mark}`)]), status: 400, code: 'PH_ERR_UPLOAD_UNSAFE_PATH' },
      { what: 'absolute', body: rawTarGz([file(path.join(tmpdir(), mark))]), status: 400, code: 'PH_ERR_UPLOAD_UNSAFE_PATH' },
      {
        what: 'symlink',
        body: rawTarGz([{ name: 'link', flag: '2', linkname: '/etc' }, file('link/x')]),
        status: 400,
        code: 'PH_ERR_UPLOAD_LINK',
      },
      {
        what: 'hard link',
        body: rawTarGz([{ name: 'hard', flag: '1', linkname: '/etc/passwd' }]),
        status: 400,
        code: 'PH_ERR_UPLOAD_LINK',
      },
      { what: 'char device', body: rawTarGz([{ name: 'null', flag: '3' }]), status: 400, code: 'PH_ERR_UPLOAD_SPECIAL_FILE' },
      { what: 'block device', body: rawTarGz([{ name: 'sda', flag: '4' }]), status: 400, code: 'PH_ERR_UPLOAD_SPECIAL_FILE' },
      { what: 'fifo', body: rawTarGz([{ name: 'pipe', flag: '6' }]), status: 400, code: 'PH_ERR_UPLOAD_SPECIAL_FILE' },
      {
        what: 'too many entries',
        body: rawTarGz(Array.from({ length: 60 }, (_, i) => file(`f${i}.txt`))),
        status: 413,
        code: 'PH_ERR_UPLOAD_TOO_MANY_ENTRIES',
      },
      {
        what: 'gzip bomb (unpacked size over the limit)',
        body: rawTarGz([file('main.ts', main), { name: 'zeros.bin', flag: '0', data: Buffer.alloc(8 * 1024 * 1024) }]),
        status: 413,
        code: 'PH_ERR_UPLOAD_TOO_LARGE',
      },
      { what: 'body over UPLOAD_LIMIT_MB', body: randomBytes(1536 * 1024), status: 413, code: 'PH_ERR_PAYLOAD_TOO_LARGE' },
      { what: 'not gzip', body: rawTarGz([file('main.ts', main)], false), status: 400, code: 'PH_ERR_UPLOAD_NOT_GZIP' },
      { what: 'gzip, not tar', body: gzipSync(Buffer.from('hello '.repeat(200))), status: 400, code: 'PH_ERR_UPLOAD_BAD_ARCHIVE' },
      {
        what: 'no token',
        body: rawTarGz([file('main.ts', main)]),
        status: 401,
        code: 'PH_ERR_UNAUTHORIZED',
        headers: { authorization: '' },
      },
      {
        what: 'wrong token',
        body: rawTarGz([file('main.ts', main)]),
        status: 401,
        code: 'PH_ERR_UNAUTHORIZED',
        headers: { authorization: 'Bearer not-the-token' },
      },
    ];
    const storedBefore = await stored();
    const dirsBefore = existsSync(sourcesRoot()) ? readdirSync(sourcesRoot()).sort() : [];
    for (const c of cases) {
      const r = await put('evil', c.body, c.headers);
      assert.equal(r.status, c.status, `${c.what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, c.code, c.what);
    }
    assert.equal(await stored(), storedBefore);
    assert.equal((await getJson(`${h.url}/plugins/evil`)).status, 404);
    assert.deepEqual(existsSync(sourcesRoot()) ? readdirSync(sourcesRoot()).sort() : [], dirsBefore);
    // every place an escaping entry could have landed
    const candidates = [h.config.dataDir, sourcesRoot(), path.dirname(h.config.dataDir), tmpdir(), '/', plugins.dir, work.dir];
    for (const d of candidates) assert.equal(existsSync(path.join(d, mark)), false, `${mark} written in ${d}`);
  });
});
