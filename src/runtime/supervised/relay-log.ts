import type { FastifyBaseLogger } from 'fastify';

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** Writes a log line a supervised instance produced with the host's logger (it adds the plugin's name). */
export function relayLog(log: FastifyBaseLogger, line: unknown): void {
  try {
    const { level, msg, time: _t, pid: _p, hostname: _h, ...fields } = JSON.parse(String(line)) as Record<string, unknown>;
    const name = LEVELS[Number(level)] ?? 'info';
    log[name](fields, typeof msg === 'string' ? msg : '');
  } catch {
    log.info({ line: String(line).slice(0, 4096) }, 'unreadable log line from the plugin worker');
  }
}
