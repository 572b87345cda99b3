import { HostError } from '../../errors/index.js';
import type { LoadRequest } from '../types.js';
import { bootOf, fromWire, type HandleFactory, type OnEnd, type OnMessage, type PluginHandle, type Ready } from './handle.js';

/** Time a new instance gets to start (load Node's modules and Fastify) before the plugin's code runs. */
const BOOT_TIMEOUT_MS = 30_000;
/** How often an instance beats; a stall is noticed within the stall timeout plus this. */
export const BEAT_MS = 250;

export interface StartOptions {
  logLevel: string;
  memoryMb: number;
}

/**
 * Starts an instance of `req` with `factory` and waits until it is ready
 * (loaded, initialized, routes registered) or refuses: the load's coded
 * error, or `PH_ERR_HOOK_TIMEOUT` when it did not answer in time (a hook that
 * never returns, even `while (true) {}`: the instance is ended).
 */
export function startInstance(
  factory: HandleFactory,
  req: LoadRequest,
  o: StartOptions,
  onMessage: OnMessage,
  onEnd: OnEnd,
): Promise<{ handle: PluginHandle; ready: Ready }> {
  let boot: ReturnType<typeof bootOf>;
  try {
    boot = bootOf(req, 'serve', { ...o, beatMs: BEAT_MS });
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    let handle: PluginHandle | undefined;
    const fail = (err: HostError) => {
      if (settled) return;
      settled = true;
      handle?.end('timeout');
      reject(err);
    };
    // First the instance starts (Node's modules, Fastify): bounded generously. Then the plugin's own code runs,
    // bounded by its hook limits: a hook stuck even in `while (true) {}` never answers, and the instance is ended.
    const loadMs = 2 * req.hookTimeoutMs + 1000;
    let timer = setTimeout(
      () => fail(new HostError('PH_ERR_PLUGIN_CRASHED', `${req.name}: its worker did not start within ${BOOT_TIMEOUT_MS} ms`)),
      BOOT_TIMEOUT_MS,
    );
    const booted = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          fail(
            new HostError(
              'PH_ERR_HOOK_TIMEOUT',
              `${req.name}: initialize() or registerRoutes() did not return within ${loadMs} ms; its worker was ended`,
              { details: { hook: 'initialize' } },
            ),
          ),
        loadMs,
      );
    };
    handle = factory(
      boot,
      (msg) => {
        if (settled || msg.t === 'log') return onMessage(msg);
        if (msg.t === 'booted') booted();
        else if (msg.t === 'ready') {
          settled = true;
          clearTimeout(timer);
          resolve({
            handle: handle as PluginHandle,
            ready: { metadata: msg.metadata, routes: msg.routes, sharedSchemas: msg.sharedSchemas },
          });
        } else if (msg.t === 'failed') {
          settled = true;
          clearTimeout(timer);
          handle?.end('stopped');
          reject(fromWire(msg.error));
        }
      },
      (reason, detail) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(
            new HostError('PH_ERR_PLUGIN_CRASHED', `${req.name}: its worker ended while loading (${detail})`, { details: { reason } }),
          );
          return;
        }
        onEnd(reason, detail);
      },
    );
  });
}

/**
 * Evaluate, `newPlugin()`, metadata, in a short-lived instance: module code never runs in the serving thread.
 */
export function trialInstance(
  factory: HandleFactory,
  req: LoadRequest,
  o: StartOptions,
): Promise<import('../../sdk/index.js').PluginMetadata> {
  let boot: ReturnType<typeof bootOf>;
  try {
    boot = bootOf(req, 'trial', { ...o, beatMs: 1000 });
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const deadlineMs = req.hookTimeoutMs + 10_000;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      handle.end('stopped');
      fn();
    };
    const handle = factory(
      boot,
      (msg) => {
        if (msg.t === 'trial') settle(() => resolve(msg.metadata));
        else if (msg.t === 'failed') settle(() => reject(fromWire(msg.error)));
      },
      (_reason, detail) =>
        settle(() =>
          reject(new HostError('PH_ERR_LOAD_EVALUATE', `${req.name}: its worker ended while evaluating the module (${detail})`)),
        ),
    );
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(new HostError('PH_ERR_LOAD_EVALUATE', `${req.name}: evaluating the module did not finish within ${deadlineMs} ms`)),
        ),
      deadlineMs,
    );
  });
}
