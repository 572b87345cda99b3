import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { clientProblem, HostError, hostProblem, PROBLEM_CONTENT_TYPE, type Problem, problemOf } from '../errors/index.js';

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
}

/** The host's error handler: HostErrors keep their code; Fastify 4xx are mapped; anything else is a 500 naming no internals. */
export function hostErrorHandler(err: FastifyError | HostError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof HostError) return sendProblem(reply, hostProblem(err));
  const status = (err as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return sendProblem(reply, clientProblem(err, status, false));
  request.log.error({ err }, 'request failed');
  return sendProblem(reply, problemOf('PH_ERR_INTERNAL', 'the server failed to handle the request'));
}
