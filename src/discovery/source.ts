import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ARTIFACT_FORMAT } from '../artifacts/index.js';

/** Entry files of a plugin directory, in order of preference. */
export const ENTRY_FILES = ['main.ts', 'plugin.ts', 'index.ts'] as const;

export function findEntry(dir: string): string | undefined {
  for (const f of ENTRY_FILES) {
    const p = path.join(dir, f);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  return undefined;
}

/** Files that decide an artifact's content: everything in the plugin directory but dot-files and node_modules. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * Content hash of a plugin source tree plus everything about the host that
 * shapes the artifact: the artifact's name, so an unchanged source is never rebuilt.
 */
export function hashSource(dir: string): string {
  const h = createHash('sha256');
  h.update(ARTIFACT_FORMAT);
  for (const f of sourceFiles(dir)) {
    h.update('\0');
    h.update(path.relative(dir, f));
    h.update('\0');
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 32);
}

/** Files that decide an artifact's content, listed without blocking the event loop. */
async function sourceFilesAsync(dir: string): Promise<string[]> {
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

/** `hashSource` without blocking the event loop: what a serving node uses. */
export async function hashSourceAsync(dir: string): Promise<string> {
  const h = createHash('sha256');
  h.update(ARTIFACT_FORMAT);
  for (const f of await sourceFilesAsync(dir)) {
    h.update('\0');
    h.update(path.relative(dir, f));
    h.update('\0');
    h.update(await readFile(f));
  }
  return h.digest('hex').slice(0, 32);
}
