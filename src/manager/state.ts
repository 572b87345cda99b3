import type { FastifyBaseLogger } from 'fastify';
import { HostError } from '../errors/index.js';

/**
 * What this node does with one plugin. `serving` may carry the error of a
 * failed newer version (the old one keeps serving); `error` means nothing of
 * this plugin serves here and the last attempt failed.
 */
export type PluginState = 'unloaded' | 'loading' | 'serving' | 'reloading' | 'unloading' | 'error';

const ALLOWED: Record<PluginState, readonly PluginState[]> = {
  unloaded: ['loading'],
  loading: ['serving', 'error'],
  serving: ['reloading', 'unloading'],
  reloading: ['serving'],
  unloading: ['unloaded'],
  error: ['loading', 'unloaded'],
};

export function canTransition(from: PluginState, to: PluginState): boolean {
  return ALLOWED[from].includes(to);
}

/** The one place a plugin's state changes: refuses illegal moves and logs each move. */
export function transition(subject: { name: string; state: PluginState }, to: PluginState, log: FastifyBaseLogger, reason: string): void {
  const from = subject.state;
  if (from === to) return;
  if (!canTransition(from, to)) {
    throw new HostError('PH_ERR_ILLEGAL_TRANSITION', `${subject.name}: illegal transition ${from} -> ${to} (${reason})`);
  }
  subject.state = to;
  log.debug({ plugin: subject.name, from, to, reason }, `plugin ${subject.name}: ${from} -> ${to}`);
}
