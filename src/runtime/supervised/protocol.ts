/**
 * Messages between the serving thread and a plugin's supervised runtime (a
 * worker thread's port, a child process's IPC channel). Requests and answers
 * carry an id; one answer that ends in one go is one message (`res`); a
 * streamed answer is `head`, `chunk`s and `end`, each chunk acknowledged
 * (`ack`) once the client took it, so a plugin never runs ahead of its client.
 */
import type { JsonObject } from '../../config/plugins/index.js';
import type { PluginMetadata } from '../../sdk/index.js';
import type { RegisteredRoute } from '../types.js';

/** What a supervised runtime is started with (`workerData`, or a child process's first message). */
export interface WorkerBoot {
  mode: 'serve' | 'trial';
  name: string;
  hash: string;
  bundle: string;
  filename: string;
  sourceDir: string | undefined;
  hookTimeoutMs: number;
  /** The version's `ctx.config`: validated and with secrets resolved by the serving thread. */
  config: JsonObject;
  logLevel: string;
  /** `PLUGIN_MEMORY_MB`: heap and external memory (Buffers, ArrayBuffers) together stay below it. */
  memoryMb: number;
  /** Shared counters (worker threads only; a process reports them in `beat` messages). */
  stats: SharedArrayBuffer | undefined;
  /** How often the runtime beats and refreshes its counters. */
  beatMs: number;
}

/** Slots of the shared counters: [heartbeat, heap used KiB, event-loop delay p99 ms, external memory KiB, over its memory cap]. */
export const STAT_BEAT = 0;
export const STAT_HEAP_KB = 1;
export const STAT_LAG_MS = 2;
export const STAT_EXTERNAL_KB = 3;
export const STAT_OVER_MEMORY = 4;
export const STAT_SLOTS = 5;

/** Bytes of a streamed answer the plugin may send before the client has taken them. */
export const STREAM_WINDOW_BYTES = 256 * 1024;

/** A coded error crossing the boundary. */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface WireRequest {
  t: 'req';
  id: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  remoteAddress: string | undefined;
  body: Uint8Array | undefined;
}

export type WireHeaders = Record<string, string | number | string[]>;

/** Serving thread → plugin runtime. */
export type ToWorker =
  | WireRequest
  | { t: 'health'; id: number; timeoutMs: number }
  | { t: 'config'; id: number; config: JsonObject; timeoutMs: number }
  | { t: 'unload'; timeoutMs: number }
  /** The client took `bytes` more of answer `id`: the plugin may send that much more. */
  | { t: 'ack'; id: number; bytes: number }
  /** Answer `id` is abandoned (the client left, or the stream stalled): the plugin's stream is destroyed. */
  | { t: 'abort'; id: number }
  /** A child process's first message: what it runs (its bundle travels here, not through the file system). */
  | { t: 'boot'; boot: WorkerBoot };

/** Counters a child process reports with each heartbeat (a worker writes them to shared memory). */
export interface Beat {
  t: 'beat';
  heapKb: number;
  externalKb: number;
  lagMs: number;
}

/** Plugin runtime → serving thread. */
export type FromWorker =
  | { t: 'booted' }
  | { t: 'ready'; metadata: PluginMetadata; routes: RegisteredRoute[]; sharedSchemas: unknown[] }
  | { t: 'failed'; error: WireError }
  | { t: 'trial'; metadata: PluginMetadata }
  | { t: 'res'; id: number; status: number; headers: WireHeaders; body: Uint8Array | string | undefined }
  | { t: 'head'; id: number; status: number; headers: WireHeaders }
  | { t: 'chunk'; id: number; data: Uint8Array | string }
  | { t: 'end'; id: number }
  | { t: 'health'; id: number; ok: boolean; detail?: unknown; error?: WireError }
  | { t: 'configured'; id: number; handled: boolean; error?: WireError }
  | { t: 'unloaded'; error?: WireError }
  | { t: 'log'; line: string }
  | Beat
  /** The runtime went past its memory cap and is ending itself. */
  | { t: 'memory'; heapKb: number; externalKb: number };
