/**
 * Plugin archives for the upload tests: a well-formed one packed from a directory (as `plugin-host push` does),
 * and hostile ones written byte by byte (links, device files, escaping paths), which the host's own writer
 * cannot produce. Plus a tiny npm package written into a plugin's node_modules.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { collect, packTarGz } from '../../src/uploads/index.js';

/** Packs a plugin directory like `plugin-host push` (node_modules only when asked). */
export async function packDir(dir: string, includeNodeModules = false): Promise<Buffer> {
  return packTarGz((await collect(dir, { includeNodeModules })).entries);
}

export interface RawEntry {
  name: string;
  /** ustar type flag: '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' dir, '6' FIFO. */
  flag: string;
  data?: Buffer | string;
  linkname?: string;
}

/** A ustar stream of `entries`, exactly as given (no checks), gzipped unless `gzip` is false. */
export function rawTarGz(entries: RawEntry[], gzip = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write('0000644\0', 100, 'ascii');
    h.write('0000000\0', 108, 'ascii');
    h.write('0000000\0', 116, 'ascii');
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    h.write('00000000000\0', 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(e.flag, 156, 'ascii');
    h.write(e.linkname ?? '', 157, 100, 'utf8');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const tar = Buffer.concat(parts);
  return gzip ? gzipSync(tar) : tar;
}

/** Writes `node_modules/<pkg>` into `dir`: a CommonJS package with declarations, exporting `greet(name)`. */
export function writeTinyPackage(dir: string, pkg = 'tiny-greet'): void {
  const root = path.join(dir, 'node_modules', pkg);
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: pkg, version: '1.0.0', main: 'index.js', types: 'index.d.ts' }));
  writeFileSync(path.join(root, 'index.js'), "exports.greet = (name) => 'hello ' + name + ' from " + pkg + "';\n");
  writeFileSync(path.join(root, 'index.d.ts'), 'export declare function greet(name: string): string;\n');
}

/** Source of a plugin importing `greet` from the tiny package and serving `GET /<name>` with its answer. */
export function greetingPluginSource(name: string, pkg = 'tiny-greet', version = '1.0.0'): string {
  return [
    "import { definePlugin } from 'plugin-host/sdk';",
    `import { greet } from '${pkg}';`,
    'export const newPlugin = definePlugin(() => ({',
    `  getMetadata: () => ({ name: '${name}', version: '${version}', description: 'greets', author: 'tests' }),`,
    '  async initialize() {},',
    '  registerRoutes(server) {',
    `    server.get('/${name}', async () => ({ plugin: '${name}', version: '${version}', message: greet('${name}') }));`,
    '  },',
    '  async cleanup() {},',
    '}));',
    '',
  ].join('\n');
}
