import type { FastifyBaseLogger } from 'fastify';
import { ChangeFollower } from '../events/index.js';
import type { Core } from './core.js';

/**
 * The change follower: a notification reconciles its plugin and tells the console's feed;
 * a resync (a new LISTEN) reconciles everything, once the first full round was asked for.
 */
export function changeFollower(core: Core, log: FastifyBaseLogger, intervalMs: number, firstRoundAsked: () => boolean): ChangeFollower {
  return new ChangeFollower({
    db: core.db,
    log,
    intervalMs,
    onChange: (name, change) => {
      void core.manager.reconcile(name);
      core.feed.desired(change);
    },
    onResync: () => {
      // The first LISTEN's resync is the full reconcile the host runs next (it reads after LISTEN is up, so it
      // misses nothing): a second one racing it would re-read and re-resolve every plugin at start for nothing.
      if (!firstRoundAsked()) return;
      void core.manager.reconcileAll();
      core.feed.resync();
    },
  });
}
