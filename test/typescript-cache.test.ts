/**
 * The type checker's TypeScript code cache: made after the first check, taken by the next checker, and a
 * cache that is damaged or made by another build is ignored (and replaced), never trusted or fatal. Each
 * load runs in a process of its own: within one process V8 reuses what it compiled, cache or not.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './support/util.js';

const { version } = createRequire(import.meta.url)('typescript/package.json') as { version: string };
const MODULE = fileURLToPath(new URL('../src/compiler/typescript-module.ts', import.meta.url));

/** Loads TypeScript in a fresh process with `cacheDir`, parses a file with it, saves the cache if asked. */
async function loadInChild(cacheDir: string, save: boolean): Promise<{ cacheUsed: boolean; version: string; statements: number }> {
  const script = `
    const { loadTypeScript } = await import(${JSON.stringify(MODULE)});
    const l = loadTypeScript({ cacheDir: ${JSON.stringify(cacheDir)} });
    const sf = l.ts.createSourceFile('x.ts', 'const a: number = 1; let b = a;', l.ts.ScriptTarget.ES2022);
    if (${save}) l.saveCache();
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    // the module is where a require of typescript, and the serving-thread probe, look for it
    if (require('typescript') !== l.ts) throw new Error('not in require.cache');
    console.log(JSON.stringify({ cacheUsed: l.cacheUsed, version: l.ts.version, statements: sf.statements.length }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  return JSON.parse(stdout.trim());
}

describe('TypeScript code cache', () => {
  const dir = tempDir('ph-ts-cache-');
  after(() => dir.cleanup());
  const cacheDir = path.join(dir.dir, 'cache');
  const files = () => {
    try {
      return readdirSync(cacheDir);
    } catch {
      return [];
    }
  };

  test('none at first; saved once; the next load takes it', async () => {
    const first = await loadInChild(cacheDir, true);
    assert.deepEqual(first, { cacheUsed: false, version, statements: 2 });
    assert.equal(files().length, 1);
    assert.match(files()[0] as string, new RegExp(`^typescript-${version.replaceAll('.', '\\.')}-node`));
    assert.deepEqual(await loadInChild(cacheDir, false), { cacheUsed: true, version, statements: 2 });
  });

  test('a damaged cache is refused, TypeScript loads anyway, and the cache is made again', async () => {
    const file = path.join(cacheDir, files()[0] as string);
    writeFileSync(file, Buffer.from('not a code cache'.repeat(64)));
    assert.deepEqual(await loadInChild(cacheDir, true), { cacheUsed: false, version, statements: 2 });
    assert.notEqual(readFileSync(file, 'utf8').slice(0, 16), 'not a code cache');
    assert.deepEqual(await loadInChild(cacheDir, false), { cacheUsed: true, version, statements: 2 });
  });

  test('a path where no directory can be made means no cache, not an error', async () => {
    const blocker = path.join(dir.dir, 'blocker');
    writeFileSync(blocker, '');
    assert.deepEqual(await loadInChild(path.join(blocker, 'cache'), true), { cacheUsed: false, version, statements: 2 });
  });
});
