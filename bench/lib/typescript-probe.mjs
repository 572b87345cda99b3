// Preloaded (NODE_OPTIONS=--import) into a server process by bench/footprint.ts: when the process exits,
// writes to TS_PROBE_OUT the files of the `typescript` package its main thread loaded.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread && process.env.TS_PROBE_OUT) {
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const loaded = Object.keys(require.cache).filter((k) => /[\\/]node_modules[\\/]typescript[\\/]/.test(k));
    writeFileSync(process.env.TS_PROBE_OUT, JSON.stringify(loaded));
  });
}
