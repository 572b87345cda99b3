// The feed's caps, with an authentication function that tells two callers apart (the host has one token
// today; the caps are per credential): a cap per caller, a total cap, an anonymous client holding nothing,
// and a stream ended after its maximum age whatever it does.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { ConsoleFeed } from '../src/console/index.js';
import { HostError } from '../src/errors/index.js';
import type { Authenticate } from '../src/http/auth.js';
import { eventsRoutes, hostErrorHandler } from '../src/http/index.js';
import type { PluginManager } from '../src/manager/index.js';
import { waitFor } from './support/util.js';

const authenticate: Authenticate = (req) => {
  const m = /^Bearer (\w+)$/.exec(req.headers.authorization ?? '');
  if (m === null) throw new HostError('PH_ERR_UNAUTHORIZED', 'who are you');
  return { id: m[1] as string };
};

describe('event feed caps', () => {
  let app: FastifyInstance;
  let url: string;
  let feed: ConsoleFeed;
  const open: AbortController[] = [];

  before(async () => {
    feed = new ConsoleFeed({ manager: new EventEmitter() as unknown as PluginManager });
    app = Fastify({ logger: false });
    app.setErrorHandler(hostErrorHandler);
    await app.register(eventsRoutes, { feed, nodeId: 'n', authenticate, maxStreams: 3, maxPerCaller: 2, maxAgeMs: 60_000 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const ac of open) ac.abort();
    feed.close();
    await app.close();
  });

  const stream = async (who?: string) => {
    const ac = new AbortController();
    const res = await fetch(`${url}/events`, { headers: who === undefined ? {} : { authorization: `Bearer ${who}` }, signal: ac.signal });
    if (res.status === 200) open.push(ac);
    return res;
  };
  const refusal = async (res: Response) => {
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    return ((await res.json()) as { code: string; detail: string }).detail;
  };

  test('a cap per caller, then a total cap; anonymous clients hold nothing', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await stream()).status, 401);
    assert.equal(feed.size, 0, 'no slot taken by a refused client');
    assert.equal((await stream('alice')).status, 200);
    assert.equal((await stream('alice')).status, 200);
    assert.match(await refusal(await stream('alice')), /EVENTS_MAX_PER_TOKEN/);
    assert.equal((await stream('bob')).status, 200, 'another caller is not locked out by the first');
    assert.match(await refusal(await stream('carol')), /EVENTS_MAX_STREAMS/);
    for (const ac of open.splice(0)) ac.abort();
    await waitFor(() => feed.size === 0 || undefined, 'streams released');
    assert.equal((await stream('carol')).status, 200);
    for (const ac of open.splice(0)) ac.abort();
    await waitFor(() => feed.size === 0 || undefined, 'streams released');
  });
});

describe('event feed age limit', () => {
  test('a stream is ended after its maximum age and its slot freed', async () => {
    const feed = new ConsoleFeed({ manager: new EventEmitter() as unknown as PluginManager });
    const app = Fastify({ logger: false });
    app.setErrorHandler(hostErrorHandler);
    await app.register(eventsRoutes, { feed, nodeId: 'n', authenticate, maxStreams: 1, maxPerCaller: 1, maxAgeMs: 200 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/events`;
      const res = await fetch(url, { headers: { authorization: 'Bearer idle' } });
      assert.equal(res.status, 200);
      // read (and otherwise do nothing) until the server ends the stream
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) {}
      await waitFor(() => feed.size === 0 || undefined, 'the slot freed');
      const again = await fetch(url, { headers: { authorization: 'Bearer idle' }, signal: AbortSignal.timeout(5000) });
      assert.equal(again.status, 200, 'the same caller gets a stream again');
      await again.body?.cancel();
    } finally {
      feed.close();
      await app.close();
    }
  });
});
