import type { FastifyInstance } from 'fastify';
import { problemOf } from '../errors/index.js';
import { sendProblem } from './problem.js';

export interface Readiness {
  /** Reasons the node is not ready; empty when ready. */
  reasons(): Promise<string[]>;
}

/** `GET /healthz`: the process answers. `GET /readyz`: database reachable, listener connected, initial load done. */
export async function healthRoutes(app: FastifyInstance, readiness: Readiness): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const reasons = await readiness.reasons();
    if (reasons.length > 0) {
      return sendProblem(reply, problemOf('PH_ERR_NOT_READY', reasons.join('; '), { reasons }));
    }
    return { status: 'ready' };
  });
}
