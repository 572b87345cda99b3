import type { FastifyInstance } from 'fastify';

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
      return reply
        .code(503)
        .type('application/problem+json')
        .send({ type: 'about:blank', title: 'Not ready', status: 503, detail: reasons.join('; '), code: 'PH_ERR_NOT_READY', reasons });
    }
    return { status: 'ready' };
  });
}
