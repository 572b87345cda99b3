import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';

/** Structured JSON logs; plugin lines carry `plugin`. */
export function createLogger(level: string, destination?: pino.DestinationStream): FastifyBaseLogger {
  return pino({ level, base: { pid: process.pid } }, destination) as unknown as FastifyBaseLogger;
}
