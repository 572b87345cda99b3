import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TarEntry } from './tar.js';

/**
 * Whether the tree under `dir` is exactly what `entries` (an archive's,
 * checked against its stored SHA-256) unpack to: the same directories, the
 * same files with the same bytes, and nothing else (no extra file, no
 * symbolic link, `.git` and `node_modules` included). An unpacked copy lives
 * in the data directory, where anything with write access to it could edit
 * it between two reloads; only a copy that still matches is compiled.
 */
export async function treeMatches(dir: string, entries: readonly TarEntry[]): Promise<boolean> {
  const expected = new Map(entries.map((e) => [e.path, e]));
  let seen = 0;
  const walk = async (rel: string): Promise<boolean> => {
    for (const name of await readdir(path.join(dir, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const e = expected.get(r);
      const st = await lstat(path.join(dir, r));
      if (st.isDirectory()) {
        // a directory the archive only implies (a file's parent, no entry of its own) is allowed
        if (e !== undefined && e.type !== 'dir') return false;
        if (e !== undefined) seen++;
        if (!(await walk(r))) return false;
      } else if (st.isFile()) {
        if (e === undefined || e.type !== 'file' || st.size !== e.data.length) return false;
        if (!(await readFile(path.join(dir, r))).equals(e.data)) return false;
        seen++;
      } else {
        return false;
      }
    }
    return true;
  };
  try {
    return (await walk('')) && seen === expected.size;
  } catch {
    return false;
  }
}
