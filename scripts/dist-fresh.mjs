// Whether dist/ is older than the sources it is built from. Tests that start `plugin-host` processes run
// the compiled code: a stale dist/ would test yesterday's server.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'scripts/build.mjs'];

function newest(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = st.mtimeMs;
  for (const e of readdirSync(p)) t = Math.max(t, newest(path.join(p, e)));
  return t;
}

/** Undefined when dist/ is up to date, else why it is not. */
export function distStale(root = ROOT) {
  let built;
  try {
    built = statSync(path.join(root, 'dist', '.built')).mtimeMs;
  } catch {
    return 'dist/ is not built';
  }
  const changed = INPUTS.find((i) => newest(path.join(root, i)) > built);
  return changed === undefined ? undefined : `${changed} changed after dist/ was built`;
}
