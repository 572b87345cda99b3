/** Tests that spawn `bin/plugin-host.mjs` run the compiled host: refuse to test a dist/ older than the sources. */
import { distStale } from '../../scripts/dist-fresh.mjs';

let fresh = false;

export function requireFreshDist(): void {
  if (fresh) return;
  const stale = distStale();
  if (stale !== undefined) throw new Error(`${stale}: run \`npm run build\` first (\`npm test\` does it)`);
  fresh = true;
}
