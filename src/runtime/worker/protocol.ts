/**
 * Messages between the serving thread and a plugin's worker thread, over the
 * worker's own port. Requests and answers carry an id; one answer that ends
 * in one go is one message (`res`); a streamed answer is `head`, `chunk`s and `end`.
 */
import type { JsonObject } from '../../config/plugins/index.js';
import type { RegisteredRoute } from '../types.js';

/** What a worker is started with (`workerData`). */
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
  /** Shared counters: [heartbeat, heap used in KiB, event-loop delay p99 in ms]. */
  stats: SharedArrayBuffer;
  /** How often the worker beats and refreshes its counters. */
  beatMs: number;
}

export const STAT_BEAT = 0;
export const STAT_HEAP_KB = 1;
export const STAT_LAG_MS = 2;
export const STAT_SLOTS = 3;

/** A coded error crossing the thread boundary. */
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

/** Serving thread → worker. */
export type ToWorker =
  | WireRequest
  | { t: 'health'; id: number; timeoutMs: number }
  | { t: 'config'; id: number; config: JsonObject; timeoutMs: number }
  | { t: 'unload'; timeoutMs: number };

/** Worker → serving thread. */
export type FromWorker =
  | { t: 'booted' }
  | { t: 'ready'; metadata: import('../../sdk/index.js').PluginMetadata; routes: RegisteredRoute[]; sharedSchemas: unknown[] }
  | { t: 'failed'; error: WireError }
  | { t: 'trial'; metadata: import('../../sdk/index.js').PluginMetadata }
  | { t: 'res'; id: number; status: number; headers: WireHeaders; body: Uint8Array | string | undefined }
  | { t: 'head'; id: number; status: number; headers: WireHeaders }
  | { t: 'chunk'; id: number; data: Uint8Array | string }
  | { t: 'end'; id: number }
  | { t: 'health'; id: number; ok: boolean; detail?: unknown; error?: WireError }
  | { t: 'configured'; id: number; handled: boolean; error?: WireError }
  | { t: 'unloaded'; error?: WireError }
  | { t: 'log'; line: string };
