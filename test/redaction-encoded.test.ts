// A secret leaves a plugin URL-encoded, base64- or hex-encoded as easily as in clear: every such form is
// redacted in the health answer and in the log lines, as the value itself is.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodedForms, noteSecrets, redact } from '../src/secrets/redact.js';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'redaction-token-123';
const JSON_AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
/** Characters that URL-encoding changes, so each form differs from the value. */
const SECRET = 'p@ss w/rd+ünï?&=42';

/** A plugin that gives its secret away in every common encoding, in its health answer and its log. */
const LEAKY = pluginSource({
  name: 'leaky',
  metadata: `({ name: 'leaky', version: '1.0.0', description: 'd', author: 'a', configSchema: { type: 'object', properties: { key: { type: 'string' } } } })`,
  head: `const encodings = (k: unknown) => {
  const b = Buffer.from(String(k), 'utf8');
  return {
    url: 'https://x.test/?k=' + encodeURIComponent(String(k)),
    form: 'k=' + encodeURIComponent(String(k)).replaceAll('%20', '+'),
    b64: 'Basic ' + b.toString('base64'),
    b64bare: b.toString('base64').replace(/=+$/, ''),
    b64url: b.toString('base64url'),
    hex: '0x' + b.toString('hex'),
    HEX: b.toString('hex').toUpperCase(),
  };
};`,
  initialize: "      ctx.log.info({ leaked: encodings(ctx.config.key ?? '') }, 'leaking the key encoded');",
  healthCheck: "return { ok: true, detail: encodings(ctx.config.key ?? '') };",
});

test('every encoded form of a noted secret is redacted; text without one is returned as is', () => {
  noteSecrets([SECRET]);
  for (const f of encodedForms(SECRET)) assert.equal(redact(`before ${f} after`), 'before [REDACTED] after', f);
  assert.equal(redact('nothing secret here'), 'nothing secret here');
});

onEachDatabase('redaction of encoded secrets', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = tempDir('ph-plugins-');
    writePlugin(plugins.dir, 'leaky', LEAKY);
    t = await startTestHost({
      ...db.hostOptions,
      pluginsDir: plugins.dir,
      env: { ADMIN_TOKEN: TOKEN },
      environment: { LEAKY_KEY: SECRET },
    });
  });
  after(async () => {
    await t?.close();
    plugins?.cleanup();
  });

  test('the health answer and the log hold none of the encoded forms', async () => {
    const put = await getJson(`${t.adminUrl}/plugins/leaky/config`, {
      method: 'PUT',
      headers: JSON_AUTH,
      body: JSON.stringify({ key: { $env: 'LEAKY_KEY' } }),
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const health = await getJson(`${t.url}/plugins/leaky/health`);
    assert.equal(health.status, 200, JSON.stringify(health.body));
    const answer = JSON.stringify(health.body);
    await waitFor(() => t.logs.find((l) => l.msg === 'leaking the key encoded' && l.leaked !== undefined), 'the leaking line');
    const logged = JSON.stringify(t.logs.lines);
    for (const f of encodedForms(SECRET)) {
      assert.ok(!answer.includes(f), `${f} in the health answer: ${answer}`);
      assert.ok(!logged.includes(f), `${f} in a log line`);
    }
    assert.ok(answer.includes('[REDACTED]'), answer);
  });
});
