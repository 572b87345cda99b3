// Compiles src/ to dist/ (JavaScript and declarations) and copies the console's browser sources, which the
// server bundles with esbuild on first request (they have their own tsconfig and are not part of this build).
// Writes dist/.built last: its time is what scripts/dist-fresh.mjs compares the sources with.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
mkdirSync(path.join(dist, 'console'), { recursive: true });
cpSync(path.join(root, 'src', 'console', 'assets'), path.join(dist, 'console', 'assets'), { recursive: true });
writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);
