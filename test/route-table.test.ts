import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isHostError } from '../src/errors/index.js';
import { HOST_PATH_PREFIXES } from '../src/model/index.js';
import { HostPaths, RouteTable } from '../src/routing/index.js';

const CORE_ROUTE_SAMPLES = HostPaths.fromRoutes(HOST_PATH_PREFIXES.map((s) => `/${s}`));

import type { LoadedVersion as LoadedPlugin } from '../src/runtime/index.js';

/** Route-table tests need only a plugin's name and routes. */
function fake(name: string, routes: Array<[string, string]>): LoadedPlugin {
  return { name, routes: routes.map(([method, url]) => ({ method, url })) } as unknown as LoadedPlugin;
}

describe('route table', () => {
  test('finds the owning plugin for static, parametric and wildcard routes, with a query string', () => {
    const a = fake('a', [
      ['GET', '/a'],
      ['GET', '/items/:id'],
    ]);
    const b = fake('b', [
      ['POST', '/a'],
      ['GET', '/files/*'],
    ]);
    const t = RouteTable.build([a, b], CORE_ROUTE_SAMPLES);
    assert.equal(t.find('GET', '/a'), a);
    assert.equal(t.find('POST', '/a'), b);
    assert.equal(t.find('GET', '/items/42?x=1'), a);
    assert.equal(t.find('GET', '/files/deep/down.txt'), b);
    assert.equal(t.find('GET', '/nothing'), undefined);
    assert.equal(t.find('DELETE', '/a'), undefined);
  });

  test('a later plugin claiming a taken route is refused, naming both; the table is unchanged', () => {
    const a = fake('a', [['GET', '/same']]);
    const t1 = RouteTable.build([a], CORE_ROUTE_SAMPLES);
    const b = fake('b', [
      ['GET', '/other'],
      ['GET', '/same'],
    ]);
    assert.throws(
      () => t1.with(b, CORE_ROUTE_SAMPLES),
      (err: unknown) => isHostError(err, 'PH_ERR_ROUTE_CONFLICT') && err.message.includes('"a"') && err.message.startsWith('b:'),
    );
    assert.equal(t1.find('GET', '/same'), a);
    assert.equal(t1.find('GET', '/other'), undefined, 'no partial routes of the refused plugin');
  });

  test('parametric routes with different parameter names still conflict', () => {
    const a = fake('a', [['GET', '/u/:id']]);
    const b = fake('b', [['GET', '/u/:name']]);
    assert.throws(
      () => RouteTable.build([a, b], CORE_ROUTE_SAMPLES),
      (err: unknown) => isHostError(err, 'PH_ERR_ROUTE_CONFLICT'),
    );
  });

  test('replacing a plugin by its next version is not a conflict', () => {
    const v1 = fake('a', [['GET', '/x']]);
    const v2 = fake('a', [['GET', '/x']]);
    const t = RouteTable.build([v1], CORE_ROUTE_SAMPLES).with(v2, CORE_ROUTE_SAMPLES);
    assert.equal(t.find('GET', '/x'), v2);
    assert.equal(t.without('a', CORE_ROUTE_SAMPLES).find('GET', '/x'), undefined);
  });

  for (const [method, url] of [
    ['GET', '/plugins'],
    ['GET', '/plugins/mine'],
    ['GET', '/healthz'],
    ['GET', '/:anything'],
    ['GET', '/*'],
    ['POST', '/plugins/:n/enable'],
    ['GET', '/docs/*'],
    ['GET', '/console'],
    ['GET', '/console/:file'],
    ['GET', '/events'],
    ['GET', '/cluster'],
    ['GET', '/:a/:b/errors'],
  ] as const) {
    test(`a plugin route ${method} ${url} that would shadow a core route is refused`, () => {
      assert.throws(
        () => RouteTable.build([fake('p', [[method, url]])], CORE_ROUTE_SAMPLES),
        (err: unknown) => isHostError(err, 'PH_ERR_ROUTE_RESERVED'),
      );
    });
  }

  // Routes that capture the host's paths: by parameter, wildcard, regex, any method.
  for (const [method, url] of [
    ['DELETE', '/:a/powertable'],
    ['HEAD', '/*'],
    ['OPTIONS', '/*'],
    ['GET', '/:kind/:id(^\\d+$)'],
    ['GET', '/:kind/:id'],
    ['GET', '/:file.json'],
    ['GET', '/:p(^pl.*)/x'],
    ['GET', '/:a?'],
    ['PUT', '/healthz/deep/:x'],
  ] as const) {
    test(`a capturing route ${method} ${url} is refused with the host path it could match`, () => {
      assert.throws(
        () => RouteTable.build([fake('p', [[method, url]])], CORE_ROUTE_SAMPLES),
        (err: unknown) => isHostError(err, 'PH_ERR_ROUTE_RESERVED') && /could match \/[a-z.]+, which belongs to the host/.test(err.message),
      );
    });
  }

  for (const [method, url] of [
    ['GET', '/pluginsx'],
    ['GET', '/my-plugins/:id'],
    ['GET', '/:id(^\\d+$)'],
    ['GET', '/hello/*'],
    ['GET', '/'],
    ['GET', '/Plugins'],
  ] as const) {
    test(`a route ${method} ${url} that cannot match a host path is accepted`, () => {
      const t = RouteTable.build([fake('p', [[method, url]])], CORE_ROUTE_SAMPLES);
      assert.equal(t.plugins.has('p'), true);
    });
  }

  test('at request time the host owns every path under its prefixes, whatever the method', () => {
    const host = CORE_ROUTE_SAMPLES;
    for (const url of [
      '/plugins',
      '/plugins/',
      '/plugins/powertable',
      '/plugins/123?x=1',
      '/healthz',
      '/healthz?',
      '/docs/static/x.js',
      '/openapi.json',
      '/metrics#frag',
    ]) {
      assert.equal(host.owns(url), true, url);
    }
    for (const url of ['/', '/hello', '/pluginsx', '/plugin', '/Plugins', '/openapi.jsonx', '/x/plugins']) {
      assert.equal(host.owns(url), false, url);
    }
  });

  test('the host paths come from the first static segment of each host route', () => {
    const host = HostPaths.fromRoutes(['/plugins/:name/enable', '/docs/*', '/openapi.json', '/', '/:weird']);
    assert.deepEqual([...host.segments].sort(), ['docs', 'openapi.json', 'plugins']);
  });
});
