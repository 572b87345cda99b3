import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ARTIFACT_FORMAT } from '../artifacts/index.js';

/** Entry files of a plugin directory, in order of preference. */
export const ENTRY_FILES = ['main.ts', 'plugin.ts', 'index.ts'] as const;

/**
 * The plugin's entry file, if it has one. Asynchronous like every file-system call the host makes about a
 * plugin once it serves: a slow or remote plugins directory must never hold up the serving thread.
 */
export async function findEntry(dir: string): Promise<string | undefined> {
  for (const f of ENTRY_FILES) {
    const p = path.join(dir, f);
    if ((await stat(p).catch(() => undefined))?.isFile()) return p;
  }
  return undefined;
}

/** Files that decide an artifact's content: everything in the plugin directory but dot-files and node_modules. */
async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/**
 * Content hash of a plugin source tree plus everything about the host that
 * shapes the artifact: the artifact's name, so an unchanged source is never rebuilt.
 */
export async function hashSource(dir: string): Promise<string> {
  const h = createHash('sha256');
  h.update(ARTIFACT_FORMAT);
  for (const f of await sourceFiles(dir)) {
    h.update('\0');
    h.update(path.relative(dir, f));
    h.update('\0');
    h.update(await readFile(f));
  }
  return h.digest('hex').slice(0, 32);
}
