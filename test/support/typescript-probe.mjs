// Preloaded (NODE_OPTIONS=--import) into a server process by test/serving-thread.test.ts: when the process
// exits, writes to TS_PROBE_OUT the files of the `typescript` package its main thread loaded (none expected).
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

// read now: the host reduces process.env to PLUGIN_ENV_ALLOW once it has started
const out = process.env.TS_PROBE_OUT;
if (isMainThread && out) {
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const loaded = Object.keys(require.cache).filter((k) => /[\\/]node_modules[\\/]typescript[\\/]/.test(k));
    writeFileSync(out, JSON.stringify(loaded));
  });
}
