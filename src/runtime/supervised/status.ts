import { HostError } from '../../errors/index.js';

/**
 * What a supervised version's worker or process is doing, below the plugin's own state (`manager/state.ts`): the plugin
 * keeps `serving` while its worker restarts; `failed` is a crash loop, which the manager then takes out.
 */
export type WorkerStatus = 'up' | 'restarting' | 'failed' | 'stopping';

const ALLOWED: Record<WorkerStatus, readonly WorkerStatus[]> = {
  up: ['restarting', 'failed', 'stopping'],
  // a restart that fails is one more death: restarting again, or failed once the crash limit is reached
  restarting: ['up', 'restarting', 'failed', 'stopping'],
  failed: ['stopping'],
  stopping: ['stopping'],
};

/** The one place a worker's status changes: returns `to`, or throws `PH_ERR_ILLEGAL_TRANSITION` for a move not allowed. */
export function moveWorker(name: string, from: WorkerStatus, to: WorkerStatus): WorkerStatus {
  if (!ALLOWED[from].includes(to)) {
    throw new HostError('PH_ERR_ILLEGAL_TRANSITION', `${name}: illegal worker transition ${from} -> ${to}`);
  }
  return to;
}
