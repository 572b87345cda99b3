import type { Diagnostic } from './typecheck.js';

/** Messages between the serving thread and the type-check worker. */
export interface CheckRequest {
  id: number;
  items: Array<{ dir: string; entry: string }>;
}

export type CheckResponse = { id: number; ok: true; results: Array<[string, Diagnostic[]]> } | { id: number; ok: false; error: string };
