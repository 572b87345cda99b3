import { HostError } from '../errors/index.js';

/** The control plane's listener and the limits of its event feed. */
export interface ControlPlaneConfig {
  /** Port of the control plane (console, admin API, feed, metrics); default `PORT + 1`, 0 when `PORT` is 0. */
  adminPort: number;
  /** Address of the control plane; loopback unless an operator opens it on purpose. */
  adminHost: string;
  /** `GET /events`: streams open at once on this node; more are refused with 503 and `Retry-After`. */
  eventsMaxStreams: number;
  /** `GET /events`: streams open at once per caller (per credential). */
  eventsMaxPerCaller: number;
  /** `GET /events`: a stream is ended after this long (the console reconnects and resyncs), so none is held forever. */
  eventsMaxAgeMs: number;
}

type Pick = (key: keyof ControlPlaneConfig, envName: string) => string | undefined;

function invalid(setting: string, message: string): never {
  throw new HostError('PH_ERR_CONFIG_INVALID', `${setting}: ${message}`, { details: { setting } });
}

function integer(setting: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) invalid(setting, `expected an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) invalid(setting, `expected ${min}..${max}, got ${n}`);
  return n;
}

/**
 * The control plane listens apart from the data plane (another port, so another
 * origin for a browser): a plugin's page can never run script where the console
 * and its token live. Its port defaults to the data plane's plus one, so
 * `npm start` gives both with no setting; 0 when `PORT` is 0 (tests).
 */
export function controlPlaneConfig(pick: Pick, port: number): ControlPlaneConfig {
  const fallback = port === 0 ? 0 : port + 1;
  const raw = pick('adminPort', 'ADMIN_PORT');
  if (raw === undefined && fallback > 65535) invalid('ADMIN_PORT', `PORT is ${port}: set ADMIN_PORT to another port`);
  const adminPort = raw === undefined ? fallback : integer('ADMIN_PORT', raw, 0, 65535);
  if (adminPort !== 0 && adminPort === port) {
    invalid('ADMIN_PORT', `must differ from PORT (${port}): the console must not share an origin with plugin pages`);
  }
  return {
    adminPort,
    adminHost: pick('adminHost', 'ADMIN_HOST') ?? '127.0.0.1',
    eventsMaxStreams: integer('EVENTS_MAX_STREAMS', pick('eventsMaxStreams', 'EVENTS_MAX_STREAMS') ?? '256', 1, 100_000),
    eventsMaxPerCaller: integer('EVENTS_MAX_PER_TOKEN', pick('eventsMaxPerCaller', 'EVENTS_MAX_PER_TOKEN') ?? '16', 1, 100_000),
    eventsMaxAgeMs: integer('EVENTS_MAX_AGE_MS', pick('eventsMaxAgeMs', 'EVENTS_MAX_AGE_MS') ?? '900000', 1000, 86_400_000),
  };
}
