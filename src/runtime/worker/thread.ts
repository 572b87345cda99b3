/**
 * Runs inside a plugin's worker thread: loads one version with the same
 * loader the inline runtime uses (its own Fastify instance, the SDK, hooks
 * with their time limits), then serves the requests the serving thread
 * forwards over this thread's port. A hang, `process.exit()`, an uncaught
 * exception or heap exhaustion here ends this thread only.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { describeError, HostError } from '../../errors/index.js';
import { loadPlugin, trialLoad } from '../inline/load.js';
import type { LoadedPlugin } from '../inline/loaded-plugin.js';
import type { LoadRequest, RegisteredRoute } from '../types.js';
import { type ResponseSink, WorkerRequest, WorkerResponse } from './doubles.js';
import { type FromWorker, STAT_BEAT, STAT_HEAP_KB, STAT_LAG_MS, type ToWorker, type WireError, type WorkerBoot } from './protocol.js';

if (parentPort === null) throw new Error('the plugin worker must run in a worker thread');
const port = parentPort;
const boot = workerData as WorkerBoot;
const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer ?? []);

/** Log lines go to the serving thread, which writes them with the host's logger under the plugin's name. */
const log = pino(
  { level: boot.logLevel, base: undefined },
  {
    write(line: string) {
      post({ t: 'log', line });
    },
  },
) as unknown as FastifyBaseLogger;

function wire(err: unknown): WireError {
  if (err instanceof HostError) {
    let details: Record<string, unknown> | undefined;
    try {
      details = err.details === undefined ? undefined : (JSON.parse(JSON.stringify(err.details)) as Record<string, unknown>);
    } catch {
      details = undefined;
    }
    return { code: err.code, message: err.message, ...(details === undefined ? {} : { details }) };
  }
  return { code: 'PH_ERR_INTERNAL', message: describeError(err) };
}

/** Structured-clone-safe copy of a JSON value (route schemas may hold functions or regular expressions). */
function jsonSafe<T>(v: T): T | undefined {
  try {
    return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as T);
  } catch {
    return undefined;
  }
}

const request: LoadRequest = {
  name: boot.name,
  hash: boot.hash,
  code: { kind: 'bundle', bundle: boot.bundle, filename: boot.filename },
  sourceDir: boot.sourceDir,
  log,
  hookTimeoutMs: boot.hookTimeoutMs,
  config: boot.config,
};

/** Heartbeat and counters the serving thread reads without a message: a stalled loop stops the beat. */
function startBeat(): void {
  const stats = new Int32Array(boot.stats);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  setInterval(() => {
    Atomics.add(stats, STAT_BEAT, 1);
    Atomics.store(stats, STAT_HEAP_KB, Math.round(process.memoryUsage().heapUsed / 1024));
    Atomics.store(stats, STAT_LAG_MS, Math.round(lag.percentile(99) / 1e6));
    lag.reset();
  }, boot.beatMs).unref();
}

function sinkFor(id: number): ResponseSink {
  return {
    whole(status, headers, body) {
      post({ t: 'res', id, status, headers, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body) });
    },
    head(status, headers) {
      post({ t: 'head', id, status, headers });
    },
    chunk(data) {
      post({ t: 'chunk', id, data: typeof data === 'string' ? data : new Uint8Array(data) });
    },
    end() {
      post({ t: 'end', id });
    },
  };
}

function serve(loaded: LoadedPlugin): void {
  port.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'req':
        loaded.handle(new WorkerRequest(msg) as never, new WorkerResponse(sinkFor(msg.id)) as never);
        return;
      case 'health':
        loaded.health(msg.timeoutMs).then(
          (r) => post({ t: 'health', id: msg.id, ok: r.ok, detail: jsonSafe(r.detail) }),
          (err: unknown) => post({ t: 'health', id: msg.id, ok: false, error: wire(err) }),
        );
        return;
      case 'config':
        loaded.reconfigure(msg.config, msg.timeoutMs).then(
          (handled) => post({ t: 'configured', id: msg.id, handled }),
          (err: unknown) => post({ t: 'configured', id: msg.id, handled: false, error: wire(err) }),
        );
        return;
      case 'unload':
        loaded.unload(msg.timeoutMs).then((r) => post({ t: 'unloaded', ...(r.error ? { error: wire(r.error) } : {}) }));
        return;
    }
  });
}

async function main(): Promise<void> {
  // the modules are loaded: from here on the plugin's own code runs, under the hook time limits
  post({ t: 'booted' });
  if (boot.mode === 'trial') {
    try {
      post({ t: 'trial', metadata: trialLoad(request) });
    } catch (err) {
      post({ t: 'failed', error: wire(err) });
    }
    port.close();
    return;
  }
  startBeat();
  let loaded: LoadedPlugin;
  try {
    // a worker cannot hand a socket to its thread: an upgrade route is refused at load, never a silent 404
    loaded = await loadPlugin(request, { refuseUpgradesIn: 'worker' });
  } catch (err) {
    post({ t: 'failed', error: wire(err) });
    port.close();
    return;
  }
  const routes: RegisteredRoute[] = loaded.routes.map((r) => ({ method: r.method, url: r.url, schema: jsonSafe(r.schema) }));
  serve(loaded);
  post({
    t: 'ready',
    metadata: jsonSafe(loaded.metadata) ?? loaded.metadata,
    routes,
    sharedSchemas: jsonSafe(loaded.sharedSchemas()) ?? [],
  });
}

void main();
