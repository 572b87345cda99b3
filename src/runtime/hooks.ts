import { describeError, HostError } from '../errors/index.js';

export type HookName = 'newPlugin' | 'getMetadata' | 'initialize' | 'registerRoutes' | 'cleanup' | 'healthCheck' | 'onConfigChange';

/**
 * Calls plugin code with a time limit. A hook that throws becomes
 * `PH_ERR_HOOK_FAILED`, one that does not settle in time `PH_ERR_HOOK_TIMEOUT`;
 * both name the plugin and the hook. `abort` is fired on timeout so cooperative
 * plugin code can stop. A late settle after the timeout is ignored.
 */
export async function callHook<T>(
  plugin: string,
  hook: HookName,
  timeoutMs: number,
  fn: () => T | Promise<T>,
  abort?: AbortController,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort?.abort(new Error(`${hook} timed out`));
      reject(new HostError('PH_ERR_HOOK_TIMEOUT', `${plugin}: ${hook}() did not finish within ${timeoutMs} ms`, { details: { hook } }));
    }, timeoutMs);
  });
  try {
    const run = (async () => fn())();
    // a rejection arriving after the timeout must not become an unhandled rejection
    run.catch(() => {});
    return await Promise.race([run, timeout]);
  } catch (err) {
    if (err instanceof HostError && (err.code === 'PH_ERR_HOOK_TIMEOUT' || err.code === 'PH_ERR_METADATA_INVALID')) throw err;
    throw new HostError('PH_ERR_HOOK_FAILED', `${plugin}: ${hook}() threw: ${describeError(err)}`, { cause: err, details: { hook } });
  } finally {
    clearTimeout(timer);
  }
}
