// Compiles src/ to dist/ (JavaScript and declarations) and copies the console's browser sources, which the
// server bundles with esbuild on first request (they have their own tsconfig and are not part of this build).
// Then bundles the command line and the server it starts into dist/bundle/ (what bin/plugin-host.mjs runs):
// one module graph of a few files loads in a fraction of the time of some three hundred separate modules.
// Writes dist/.built last: its time is what scripts/dist-fresh.mjs compares the sources with.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
await bundle();
writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);

/**
 * Bundles dist/cli/main.js and what it imports, with code splitting so that what the CLI imports lazily
 * (the server, the in-process type checker, PGlite) stays lazy. Left outside: packages that find files of
 * their own beside their modules (PGlite's WebAssembly, TypeScript's libraries, esbuild's binary, Swagger
 * UI's assets, pino's transport worker). Each module's `import.meta.url` is rewritten to the URL of its
 * unbundled copy in dist/, so the paths it derives (worker entry points, the SDK's declarations, the
 * project root) are the same bundled or not.
 */
async function bundle() {
  const { build } = await import('esbuild');
  const outdir = path.join(dist, 'bundle');
  const keepModuleUrls = {
    name: 'keep-module-urls',
    setup(b) {
      b.onLoad({ filter: /\.js$/ }, (args) => {
        if (!args.path.startsWith(dist + path.sep)) return undefined;
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = path.relative(outdir, args.path).split(path.sep).join('/');
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js' };
      });
    },
  };
  await build({
    entryPoints: { 'plugin-host': path.join(dist, 'cli', 'main.js') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: ['@electric-sql/pglite', 'typescript', 'esbuild', '@fastify/swagger', '@fastify/swagger-ui', 'pino'],
    // bundled CommonJS packages call require() for Node's modules and their own JSON
    banner: { js: "import { createRequire as __hostRequire } from 'node:module'; const require = __hostRequire(import.meta.url);" },
    plugins: [keepModuleUrls],
    logLevel: 'warning',
  });
}
