import type { FastifyBaseLogger } from 'fastify';
import { HostError } from '../errors/index.js';
import type { PluginState } from '../model/index.js';

export type { PluginState } from '../model/index.js';

const ALLOWED: Record<PluginState, readonly PluginState[]> = {
  // unloaded -> error: an attempt that failed before any load started (bad desired state, unresolvable source)
  unloaded: ['loading', 'error'],
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
