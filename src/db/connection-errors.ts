import { describeError, HostError, isHostError } from '../errors/index.js';

/** Error codes that mean "the server is not there (yet)", as opposed to a bad query. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
  '3D000', // database does not exist (yet)
]);

/**
 * True for errors that mean the database is unreachable. Drivers and the ORM
 * wrap each other's errors, so the cause chain is followed a few levels.
 */
export function isConnectionError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** A connection failure as the host's coded error (503), keeping the driver's error as `cause`; anything else unchanged. */
export function wrapConnectionError(err: unknown): unknown {
  if (isHostError(err) || !isConnectionError(err)) return err;
  return new HostError('PH_ERR_DB_UNAVAILABLE', `database unavailable: ${describeError(err)}`, { cause: err });
}

/**
 * Wraps every method of an object (and its prototype chain up to Object) so a
 * connection failure, thrown or rejected, leaves it as `PH_ERR_DB_UNAVAILABLE`.
 * Applied once where database calls enter the host (the repository, the
 * database handle), so no other folder classifies driver errors.
 */
export function guardConnectionErrors<T extends object>(target: T): T {
  const names = new Set<string>();
  for (let proto: object | null = target; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const n of Object.getOwnPropertyNames(proto)) if (n !== 'constructor') names.add(n);
  }
  for (const n of names) {
    const d = findDescriptor(target, n);
    if (d === undefined || typeof d.value !== 'function') continue;
    const fn = d.value as (...args: unknown[]) => unknown;
    Object.defineProperty(target, n, {
      configurable: true,
      writable: true,
      value(this: unknown, ...args: unknown[]) {
        let r: unknown;
        try {
          r = fn.apply(this, args);
        } catch (err) {
          throw wrapConnectionError(err);
        }
        if (r instanceof Promise) return r.catch((err: unknown) => Promise.reject(wrapConnectionError(err)));
        return r;
      },
    });
  }
  return target;
}

function findDescriptor(obj: object, name: string): PropertyDescriptor | undefined {
  for (let p: object | null = obj; p !== null; p = Object.getPrototypeOf(p)) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d !== undefined) return d;
  }
  return undefined;
}
