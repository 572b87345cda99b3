// The control plane's settings: a default port beside the data plane's, loopback whatever HOST says, and
// no setting that would put the console on the plugins' origin.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { isHostError } from '../src/errors/index.js';

const refused = (env: Record<string, string>, setting: string) =>
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => isHostError(err, 'PH_ERR_CONFIG_INVALID') && err.details?.setting === setting,
    `${JSON.stringify(env)} is refused naming ${setting}`,
  );

describe('control plane settings', () => {
  test('ADMIN_PORT defaults to PORT + 1 (0 with PORT=0), ADMIN_HOST to loopback even when HOST opens the data plane', () => {
    const c = loadConfig({});
    assert.equal(c.adminPort, 3001);
    assert.equal(c.adminHost, '127.0.0.1');
    assert.equal(loadConfig({ PORT: '8080', HOST: '0.0.0.0' }).adminPort, 8081);
    assert.equal(loadConfig({ PORT: '8080', HOST: '0.0.0.0' }).adminHost, '127.0.0.1');
    assert.equal(loadConfig({ PORT: '0' }).adminPort, 0);
    assert.equal(loadConfig({ ADMIN_PORT: '9000', ADMIN_HOST: '10.0.0.1' }).adminHost, '10.0.0.1');
    assert.equal(loadConfig({}, { adminPort: '9100' }).adminPort, 9100, 'the --admin-port flag wins');
  });

  test('the feed caps have documented defaults and bounds', () => {
    const c = loadConfig({});
    assert.deepEqual([c.eventsMaxStreams, c.eventsMaxPerCaller, c.eventsMaxAgeMs], [256, 16, 900_000]);
    refused({ EVENTS_MAX_STREAMS: '0' }, 'EVENTS_MAX_STREAMS');
    refused({ EVENTS_MAX_PER_TOKEN: 'many' }, 'EVENTS_MAX_PER_TOKEN');
    refused({ EVENTS_MAX_AGE_MS: '10' }, 'EVENTS_MAX_AGE_MS');
  });

  test('a careless operator cannot put both planes on one port', () => {
    refused({ PORT: '4000', ADMIN_PORT: '4000' }, 'ADMIN_PORT');
    refused({ PORT: '65535' }, 'ADMIN_PORT');
    refused({ ADMIN_PORT: '70000' }, 'ADMIN_PORT');
  });
});
