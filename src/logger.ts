import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { redactLogLine } from './secrets/redact.js';

/**
 * Structured JSON logs; plugin lines carry `plugin`. Every line, whoever
 * logged it (the host, Fastify, a plugin through `ctx.log`), has the resolved
 * values of plugin secrets replaced before it is written.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): FastifyBaseLogger {
  return pino({ level, base: { pid: process.pid }, hooks: { streamWrite: redactLogLine } }, destination) as unknown as FastifyBaseLogger;
}
