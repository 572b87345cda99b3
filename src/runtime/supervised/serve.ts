/**
 * The plugin side of a supervised runtime, the same in a worker thread and in
 * a child process: loads one version with the loader the inline runtime uses
 * (its own Fastify instance, the SDK, hooks with their time limits), confined
 * (the modules that reach outside refused, Buffers counted against the memory
 * cap), then serves what the serving thread forwards over `channel`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { describeError, HostError } from '../../errors/index.js';
import { guardBufferAllocations, type MemoryNow, memoryNow, overCap } from '../confine/memory-guard.js';
import { closeProcessEscapes } from '../confine/modules.js';
import { loadPlugin, trialLoad } from '../inline/load.js';
import type { LoadedPlugin } from '../inline/loaded-plugin.js';
import type { LoadRequest, RegisteredRoute } from '../types.js';
import { type ResponseSink, WorkerRequest, WorkerResponse } from './doubles.js';
import type { FromWorker, ToWorker, WireError, WorkerBoot } from './protocol.js';

/** How the plugin side talks to the serving thread. */
export interface Channel {
  post(m: FromWorker): void;
  onMessage(fn: (m: ToWorker) => void): void;
  /** Lets the runtime end once nothing else is pending (a trial, a failed load). */
  close(): void;
  /** Publishes the heartbeat and counters (shared memory for a worker, a `beat` message for a process). */
  beat(now: MemoryNow, lagMs: number): void;
  /** Records that the runtime went past its memory cap, then ends it. */
  overMemory(now: MemoryNow): never;
}

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

/** Heartbeat and counters: a stalled loop stops the beat; memory past the cap ends the runtime. */
function startBeat(boot: WorkerBoot, channel: Channel): void {
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const cap = boot.memoryMb * 1024 * 1024;
  setInterval(() => {
    const now = memoryNow();
    if (overCap(now, cap)) channel.overMemory(now);
    channel.beat(now, Math.round(lag.percentile(99) / 1e6));
    lag.reset();
  }, boot.beatMs).unref();
}

function sinkFor(channel: Channel, id: number): ResponseSink {
  return {
    whole(status, headers, body) {
      channel.post({ t: 'res', id, status, headers, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body) });
    },
    head(status, headers) {
      channel.post({ t: 'head', id, status, headers });
    },
    chunk(data) {
      channel.post({ t: 'chunk', id, data: typeof data === 'string' ? data : new Uint8Array(data) });
    },
    end() {
      channel.post({ t: 'end', id });
    },
  };
}

function serve(loaded: LoadedPlugin, channel: Channel): void {
  /** Answers being streamed, by request id: acknowledgements and aborts reach them here. */
  const streams = new Map<number, WorkerResponse>();
  channel.onMessage((msg: ToWorker) => {
    switch (msg.t) {
      case 'req': {
        const res = new WorkerResponse(sinkFor(channel, msg.id));
        streams.set(msg.id, res);
        res.once('close', () => streams.delete(msg.id));
        loaded.handle(new WorkerRequest(msg) as never, res as never);
        return;
      }
      case 'ack':
        streams.get(msg.id)?.acknowledge(msg.bytes);
        return;
      case 'abort':
        streams.get(msg.id)?.destroy();
        return;
      case 'health':
        loaded.health(msg.timeoutMs).then(
          (r) => channel.post({ t: 'health', id: msg.id, ok: r.ok, detail: jsonSafe(r.detail) }),
          (err: unknown) => channel.post({ t: 'health', id: msg.id, ok: false, error: wire(err) }),
        );
        return;
      case 'config':
        loaded.reconfigure(msg.config, msg.timeoutMs).then(
          (handled) => channel.post({ t: 'configured', id: msg.id, handled }),
          (err: unknown) => channel.post({ t: 'configured', id: msg.id, handled: false, error: wire(err) }),
        );
        return;
      case 'unload':
        loaded.unload(msg.timeoutMs).then((r) => channel.post({ t: 'unloaded', ...(r.error ? { error: wire(r.error) } : {}) }));
        return;
    }
  });
}

/**
 * Loads `boot`'s version and serves it over `channel` (or, for a trial, reports its metadata and closes).
 * `runtime` names where it runs: neither a worker nor a process can be handed an upgraded connection, so a
 * route taking one is refused at load, naming it.
 */
export async function runPlugin(boot: WorkerBoot, channel: Channel, runtime: 'worker' | 'process'): Promise<void> {
  /** Log lines go to the serving thread, which writes them with the host's logger under the plugin's name. */
  const log = pino(
    { level: boot.logLevel, base: undefined },
    {
      write(line: string) {
        channel.post({ t: 'log', line });
      },
    },
  ) as unknown as FastifyBaseLogger;
  const request: LoadRequest = {
    name: boot.name,
    hash: boot.hash,
    code: { kind: 'bundle', bundle: boot.bundle, filename: boot.filename },
    sourceDir: boot.sourceDir,
    log,
    hookTimeoutMs: boot.hookTimeoutMs,
    config: boot.config,
    confined: true,
  };
  closeProcessEscapes(boot.name);
  guardBufferAllocations(boot.memoryMb * 1024 * 1024, (now) => channel.overMemory(now));
  // the modules are loaded: from here on the plugin's own code runs, under the hook time limits
  channel.post({ t: 'booted' });
  if (boot.mode === 'trial') {
    try {
      channel.post({ t: 'trial', metadata: trialLoad(request) });
    } catch (err) {
      channel.post({ t: 'failed', error: wire(err) });
    }
    channel.close();
    return;
  }
  startBeat(boot, channel);
  let loaded: LoadedPlugin;
  try {
    loaded = await loadPlugin(request, { refuseUpgradesIn: runtime });
  } catch (err) {
    channel.post({ t: 'failed', error: wire(err) });
    channel.close();
    return;
  }
  const routes: RegisteredRoute[] = loaded.routes.map((r) => ({ method: r.method, url: r.url, schema: jsonSafe(r.schema) }));
  serve(loaded, channel);
  channel.post({
    t: 'ready',
    metadata: jsonSafe(loaded.metadata) ?? loaded.metadata,
    routes,
    sharedSchemas: jsonSafe(loaded.sharedSchemas()) ?? [],
  });
}
