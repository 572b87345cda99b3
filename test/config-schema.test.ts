// The configuration rules without a server: schema drafts, validation messages, secret references,
// redaction, merge patches, and the SDK's typing of ctx.config (checked by `npm run typecheck`).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  checkStoredConfig,
  finalizeConfig,
  mergePatch,
  noteSecrets,
  redact,
  redactLogLine,
  resolveReferences,
  schemaProblem,
  withSecretsDir,
} from '../src/config/plugins/index.js';
import { isHostError } from '../src/errors/index.js';
import { createLogger } from '../src/logger.js';
import { validateMetadata } from '../src/runtime/metadata.js';
import { definePlugin } from '../src/sdk/index.js';
import { LogSink } from './support/host.js';

const SCHEMA = {
  type: 'object',
  properties: {
    greeting: { type: 'string', default: 'hello' },
    count: { type: 'integer', minimum: 0 },
    upstream: { type: 'string', format: 'uri' },
    nested: { type: 'object', properties: { on: { type: 'boolean', default: true } }, default: {} },
  },
  additionalProperties: false,
} as const;

/** The pointers and messages of the PH_ERR_PLUGIN_CONFIG_INVALID `fn` throws. */
function refusal(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(isHostError(err, 'PH_ERR_PLUGIN_CONFIG_INVALID'), String(err));
    return ((err.details?.errors ?? []) as { pointer: string; message: string }[]).map((e) => `${e.pointer} ${e.message}`);
  }
  assert.fail('expected a refusal');
}

describe('configuration validation', () => {
  test('defaults applied, each failing field named by JSON pointer, no value quoted', () => {
    assert.deepEqual(checkStoredConfig('p', SCHEMA, {}), { greeting: 'hello', nested: { on: true } });
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, { greeting: 5, count: -1, extra: 'sekret-value', upstream: 'not a uri' })),
      ['/extra is not allowed (not in the schema)', '/greeting must be string', '/count must be >= 0', '/upstream must match format "uri"'],
    );
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, [1])),
      ['/ must be an object, got an array'],
    );
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, 'text')),
      ['/ must be an object, got string'],
    );
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, null)),
      ['/ must be an object, got null'],
    );
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', { type: 'object', required: ['a/b'] }, {})),
      ['/a~1b is required'],
    );
  });

  test('without a schema only {} is accepted', () => {
    assert.deepEqual(checkStoredConfig('p', undefined, {}), {});
    assert.deepEqual(
      refusal(() => finalizeConfig('p', undefined, { a: 1 })),
      ['/a is not allowed: the plugin declares no configSchema, so its configuration is {}'],
    );
  });

  test('draft-07 by default, draft 2020-12 by $schema, others refused', () => {
    const dependent = { type: 'object', dependentRequired: { user: ['password'] } };
    // draft-07 does not know dependentRequired: ignored
    assert.deepEqual(checkStoredConfig('p', dependent, { user: 'u' }), { user: 'u' });
    const v2020 = { $schema: 'https://json-schema.org/draft/2020-12/schema', ...dependent };
    assert.equal(schemaProblem(v2020), undefined);
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', v2020, { user: 'u' })),
      ['/ must have property password when property user is present'],
    );
    assert.match(schemaProblem({ $schema: 'http://json-schema.org/draft-04/schema#' }) ?? '', /not supported/);
    assert.match(schemaProblem({ type: 'string' }) ?? '', /must describe an object/);
    assert.match(schemaProblem({ type: 'object', properties: { a: { type: 'nope' } } }) ?? '', /not a valid JSON Schema/);
    assert.equal(schemaProblem({ $id: 'same', type: 'object' }), undefined);
    assert.equal(schemaProblem({ $id: 'same', type: 'object', properties: { a: {} } }), undefined, 'two schemas with one $id compile');
  });

  test('getMetadata() with a bad configSchema is PH_ERR_METADATA_INVALID', () => {
    const base = { name: 'p', version: '1.0.0' };
    assert.deepEqual(validateMetadata({ ...base, configSchema: SCHEMA }, 'p').configSchema, SCHEMA);
    assert.throws(
      () => validateMetadata({ ...base, configSchema: { type: 'array' } }, 'p'),
      (err: unknown) => isHostError(err, 'PH_ERR_METADATA_INVALID') && /configSchema that must describe an object/.test(err.message),
    );
  });
});

describe('secret references', () => {
  test('stored as written; checked for form where a value goes; host secrets refused', () => {
    const ref = { greeting: { $env: 'GREETING' } };
    assert.deepEqual(checkStoredConfig('p', SCHEMA, ref), { greeting: { $env: 'GREETING' }, nested: { on: true } });
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, { greeting: { $env: 'ADMIN_TOKEN' } })),
      ['/greeting must not refer to ADMIN_TOKEN: it is a secret of the host'],
    );
    for (const name of ['DATABASE_URL', 'PGPASSWORD', 'ADMIN_TOKEN_FILE', 'DATABASE_URL_FILE', 'PGPASSWORD_FILE']) {
      assert.equal(refusal(() => checkStoredConfig('p', SCHEMA, { greeting: { $env: name } })).length, 1, name);
    }
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, { greeting: { $env: 'A', $file: '/x' } })),
      ['/greeting must be a secret reference with exactly one string key, {"$env": "NAME"} or {"$file": "/path"}'],
    );
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, { greeting: { $file: 'relative' } })),
      ['/greeting must name an absolute file path, got "relative"'],
    );
    assert.deepEqual(
      refusal(() => checkStoredConfig('p', SCHEMA, { greeting: { $env: 'no-dash' } })),
      ['/greeting must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), got "no-dash"'],
    );
  });

  test('resolved from the given environment and files; unset or unreadable names the variable', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ph-secret-'));
    try {
      const file = path.join(dir, 'key');
      writeFileSync(file, 'from-file\n');
      const env = { KEY: 'from-env', ADMIN_TOKEN: 'host-token', ADMIN_TOKEN_FILE: file };
      const stored = { a: { $env: 'KEY' }, list: [{ $env: 'KEY' }] };
      const r = resolveReferences('p', stored, env);
      assert.deepEqual(r.config, { a: 'from-env', list: ['from-env'] });
      assert.deepEqual(stored, { a: { $env: 'KEY' }, list: [{ $env: 'KEY' }] }, 'the stored values are not changed');
      assert.throws(
        () => resolveReferences('p', { a: { $env: 'MISSING' } }, env),
        (err: unknown) =>
          isHostError(err, 'PH_ERR_PLUGIN_CONFIG_SECRET') && /\/a: environment variable MISSING is not set on this node/.test(err.message),
      );
      assert.throws(
        () => resolveReferences('p', { a: { $file: file } }, env),
        (err: unknown) => isHostError(err, 'PH_ERR_PLUGIN_CONFIG_SECRET') && /holds a secret of the host/.test(err.message),
      );
      assert.deepEqual(resolveReferences('p', { a: { $file: file } }, withSecretsDir({ KEY: 'x' }, dir)).config, { a: 'from-file' });
      assert.throws(
        () => resolveReferences('p', { a: { $file: file } }, { KEY: 'x' }),
        (err: unknown) =>
          isHostError(err, 'PH_ERR_PLUGIN_CONFIG_SECRET') && /not under the secrets directory \/run\/secrets/.test(err.message),
        'a file outside the secrets directory (default /run/secrets) is not read',
      );
      assert.throws(
        () => resolveReferences('p', { a: { $file: path.join(dir, 'nope') } }, withSecretsDir({}, dir)),
        (err: unknown) => isHostError(err, 'PH_ERR_PLUGIN_CONFIG_SECRET') && /ENOENT/.test(err.message),
      );
      assert.throws(
        () => resolveReferences('p', { a: { $env: 'ADMIN_TOKEN' } }, env),
        (err: unknown) => isHostError(err, 'PH_ERR_PLUGIN_CONFIG_INVALID'),
        'a hand-written reference to a host secret is refused at load as well',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('resolved values are redacted from log lines, which stay JSON, and from messages', () => {
    const secret = `v@lue"with\\quotes-${process.pid}`;
    noteSecrets([secret]);
    assert.equal(redact(`key=${secret}!`), 'key=[REDACTED]!');
    const sink = new LogSink();
    const log = createLogger('info', sink);
    log.info({ key: secret, nested: { list: [secret] }, [secret]: 1 }, `using ${secret}`);
    log.child({ plugin: 'p' }).warn(`child ${secret}`);
    assert.equal(sink.lines.length, 2, 'each line still parses as JSON');
    const text = JSON.stringify(sink.lines);
    assert.ok(!text.includes(secret) && !text.includes(JSON.stringify(secret).slice(1, -1)), text);
    assert.equal(sink.lines[0]?.msg, 'using [REDACTED]');
    assert.deepEqual(sink.lines[0]?.nested, { list: ['[REDACTED]'] });
    assert.equal(redactLogLine('not json {'), 'not json {');
  });
});

describe('JSON merge patch', () => {
  test('objects merge, null removes, a reference replaces whole', () => {
    assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: 5 }), { a: 1, b: { d: 3, e: 4 }, f: 5 });
    assert.deepEqual(mergePatch({ k: { $env: 'A' } }, { k: { $file: '/x' } }), { k: { $file: '/x' } });
    assert.deepEqual(mergePatch({ a: 1 }, [1]), [1]);
  });
});

// Types only (checked by `npm run typecheck`): ctx.config from the schema literal, or from a type argument.
export const fromSchema = definePlugin(() => ({
  getMetadata: () => ({ name: 't', version: '1.0.0', description: '', author: '', configSchema: SCHEMA }),
  initialize(ctx) {
    const greeting: string = ctx.config.greeting; // a default makes it present
    const count: number | undefined = ctx.config.count;
    const on: boolean = ctx.config.nested.on;
    // @ts-expect-error not in the schema
    void ctx.config.other;
    void [greeting, count, on];
  },
  registerRoutes(server, ctx) {
    server.get('/t', async () => ({ greeting: ctx.config.greeting }));
  },
  cleanup() {},
  onConfigChange(_ctx, next, prev) {
    void (next.greeting.length + prev.greeting.length);
  },
}));

export const fromTypeArgument = definePlugin<{ apiKey: string; retries?: number }>(() => ({
  getMetadata: () => ({ name: 'u', version: '1.0.0', description: '', author: '' }),
  initialize(ctx) {
    const key: string = ctx.config.apiKey;
    // @ts-expect-error a number, maybe absent
    const retries: number = ctx.config.retries;
    void [key, retries];
  },
  registerRoutes() {},
  cleanup() {},
}));

export const withoutSchema = definePlugin(() => ({
  getMetadata: () => ({ name: 'v', version: '1.0.0', description: '', author: '' }),
  initialize(ctx) {
    // @ts-expect-error no configSchema: the configuration is {}
    void ctx.config.anything;
  },
  registerRoutes() {},
  cleanup() {},
}));
