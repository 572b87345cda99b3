import type { FastifyBaseLogger } from 'fastify';

/**
 * Keys of a log line that the host writes and readers trust: which plugin
 * wrote the line, on which node, for which request, and pino's own fields. A
 * JSON line holding a key twice is read with the last value by most tools, so
 * a plugin passing `{plugin: 'victim'}` would otherwise produce a line that
 * names another plugin.
 */
export const HOST_OWNED_LOG_KEYS: readonly string[] = ['plugin', 'node', 'nodeId', 'reqId', 'pid', 'hostname', 'level', 'time', 'msg'];

const OWNED = new Set(HOST_OWNED_LOG_KEYS);

/**
 * `obj` without the host-owned keys; the keys a plugin tried to set are named
 * under `droppedKeys`, so the attempt stays visible. The common case (no such
 * key) returns `obj` itself, without a copy.
 */
export function withoutOwnedKeys(obj: Record<string, unknown>): Record<string, unknown> {
  let dropped: string[] | undefined;
  for (const k of HOST_OWNED_LOG_KEYS) {
    if (!Object.hasOwn(obj, k)) continue;
    if (dropped === undefined) dropped = [];
    dropped.push(k);
  }
  if (dropped === undefined) return obj;
  const out: Record<string, unknown> = { droppedKeys: dropped };
  for (const [k, v] of Object.entries(obj)) if (!OWNED.has(k)) out[k] = v;
  return out;
}

interface PinoLike extends FastifyBaseLogger {
  setBindings?(b: Record<string, unknown>): void;
}
type ChildFn = (this: PinoLike, bindings: Record<string, unknown>, options?: Record<string, unknown>) => PinoLike;

function stripBindings(b: unknown): Record<string, unknown> {
  return b !== null && typeof b === 'object' ? withoutOwnedKeys(b as Record<string, unknown>) : {};
}

/**
 * The logger plugin code gets (`ctx.log`, `request.log`, the instance's `log`):
 * a child of `base` (which binds the plugin's name) whose lines, and whose own
 * children's bindings, cannot set a host-owned key. pino's `formatters.log` is
 * inherited by every descendant; `child` and `setBindings` are own properties
 * of this logger, which every descendant inherits through its prototype chain
 * (pino makes a child with `Object.create(parent)`).
 *
 * `rawChild` is pino's own `child`, for the host alone: it binds the request
 * id of each request (a host-owned key) on a logger that keeps the guard.
 */
export function guardedPluginLogger(base: FastifyBaseLogger): { log: FastifyBaseLogger; rawChild: ChildFn } {
  const log = (base as PinoLike).child(
    {},
    { formatters: { log: (o: object) => withoutOwnedKeys(o as Record<string, unknown>) } },
  ) as PinoLike;
  const rawChild = log.child as unknown as ChildFn;
  const rawSetBindings = log.setBindings;
  Object.defineProperty(log, 'child', {
    value: function child(this: PinoLike, bindings: Record<string, unknown>, options?: Record<string, unknown>) {
      // a plugin's own `formatters` would replace the guard: it is not passed on
      let opts = options;
      if (opts !== undefined && opts !== null && Object.hasOwn(opts, 'formatters')) {
        const { formatters: _dropped, ...rest } = opts;
        opts = rest;
      }
      return rawChild.call(this, stripBindings(bindings), opts);
    },
    writable: false,
    configurable: false,
  });
  if (typeof rawSetBindings === 'function') {
    Object.defineProperty(log, 'setBindings', {
      value: function setBindings(this: PinoLike, b: Record<string, unknown>) {
        rawSetBindings.call(this, stripBindings(b));
      },
      writable: false,
      configurable: false,
    });
  }
  return { log, rawChild };
}

let requestSeq = 0;

/**
 * Request ids unique across every plugin of the process (each plugin has its
 * own Fastify instance, whose default counter would give `req-1` to each).
 * An id the client sends is not used: it could name another request.
 */
export function nextRequestId(): string {
  requestSeq = (requestSeq + 1) % Number.MAX_SAFE_INTEGER;
  return `r-${requestSeq.toString(36)}`;
}
