import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HostError } from '../errors/index.js';
import type { TarEntry } from './tar.js';

/**
 * Writes checked entries (see `readTarGz`) under `dest`, a directory that must not exist yet. Files get mode
 * 0644 whatever the archive says, and are created exclusively (`wx`): nothing is overwritten, and a path met
 * twice, or a file where a directory should be, fails the unpack.
 */
export async function extract(entries: readonly TarEntry[], dest: string): Promise<void> {
  const root = path.resolve(dest);
  await mkdir(root, { recursive: false });
  for (const e of entries) {
    const target = path.resolve(root, e.path);
    // `safeEntryPath` already refused these; checked again where the write happens
    if (!target.startsWith(`${root}${path.sep}`))
      throw new HostError('PH_ERR_UPLOAD_UNSAFE_PATH', `entry ${e.path} leaves the unpack directory`);
    try {
      if (e.type === 'dir') {
        await mkdir(target, { recursive: true });
      } else {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, e.data, { flag: 'wx', mode: 0o644 });
      }
    } catch (err) {
      throw new HostError('PH_ERR_UPLOAD_BAD_ARCHIVE', `entry ${e.path} cannot be unpacked: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * Entries for packing a plugin directory: regular files and directories, sorted, paths relative to `dir`.
 * `node_modules` is left out unless asked (the host bundles what the plugin imports from it at compile time),
 * `.git` always; symbolic links are skipped and listed, since the host refuses them in an archive.
 */
export async function collect(dir: string, o: { includeNodeModules: boolean }): Promise<{ entries: TarEntry[]; skipped: string[] }> {
  const entries: TarEntry[] = [];
  const skipped: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (name === '.git' || (name === 'node_modules' && !o.includeNodeModules)) continue;
      const st = await lstat(path.join(dir, r));
      if (st.isDirectory()) {
        entries.push({ path: r, type: 'dir', data: Buffer.alloc(0) });
        await walk(r);
      } else if (st.isFile()) {
        entries.push({ path: r, type: 'file', data: await readFile(path.join(dir, r)) });
      } else {
        skipped.push(r);
      }
    }
  };
  await walk('');
  return { entries, skipped };
}
