// A compile reads only the plugin's own directory: an import of an absolute or ../ path, one through a symbolic
// link that leads out, or a tsconfig.json extending a file elsewhere is refused with a compile error naming it,
// and no artifact holds the outside file's text.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Compiler } from '../src/compiler/index.js';
import { isHostError } from '../src/errors/index.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { tempDir } from './support/util.js';

const OUTSIDE_TEXT = 'outside-secret-4d2c';

describe('compile stays inside the plugin', () => {
  const plugins = tempDir('ph-plugins-');
  const artifacts = tempDir('ph-artifacts-');
  const elsewhere = tempDir('ph-elsewhere-');
  after(() => {
    plugins.cleanup();
    artifacts.cleanup();
    elsewhere.cleanup();
  });
  const secretFile = path.join(elsewhere.dir, 'secret.ts');
  writeFileSync(secretFile, `export const leaked = ${JSON.stringify(OUTSIDE_TEXT)};\n`);
  writeFileSync(path.join(elsewhere.dir, 'base.json'), JSON.stringify({ compilerOptions: { target: 'es2022' } }));
  const compiler = new Compiler({ artifactsDir: artifacts.dir, pluginsDir: plugins.dir, typecheck: false });

  /** A plugin answering the imported value. */
  const importing = (name: string, specifier: string) =>
    pluginSource({
      name,
      head: `import { leaked } from ${JSON.stringify(specifier)};`,
      routes: `      server.get('/${name}', async () => ({ leaked }));`,
    });

  async function refused(dir: string, pattern: RegExp): Promise<void> {
    await assert.rejects(
      () => compiler.compile(dir),
      (err: unknown) => isHostError(err, 'PH_ERR_COMPILE_OUTSIDE') && pattern.test(err.message),
    );
  }

  test('an import of a ../ path is refused, naming it', async () => {
    const rel = path.relative(path.join(plugins.dir, 'up'), secretFile.replace(/\.ts$/, ''));
    const dir = writePlugin(plugins.dir, 'up', importing('up', rel));
    await refused(dir, new RegExp(`imports "${rel.replaceAll('.', '\\.')}"`));
  });

  test('an import of an absolute path is refused, naming it', async () => {
    const dir = writePlugin(plugins.dir, 'abs', importing('abs', secretFile));
    await refused(dir, /imports ".*secret\.ts".*outside the plugin's directory/);
  });

  test('an import through a symbolic link leading out is refused', async () => {
    const dir = writePlugin(plugins.dir, 'linked', importing('linked', './link'));
    symlinkSync(secretFile, path.join(dir, 'link.ts'));
    await refused(dir, /imports "\.\/link"/);
  });

  test('node_modules linked to a shared install compiles; a link named node_modules to a directory that is no install is refused', async () => {
    // a shared install (a workspace's or pnpm's layout): the package lives outside the plugin, reached through its node_modules
    const shared = path.join(elsewhere.dir, 'install', 'node_modules');
    mkdirSync(path.join(shared, 'shared-dep'), { recursive: true });
    writeFileSync(path.join(shared, 'shared-dep', 'package.json'), JSON.stringify({ name: 'shared-dep', main: 'index.js' }));
    writeFileSync(path.join(shared, 'shared-dep', 'index.js'), 'exports.leaked = "from a shared install";\n');
    const ok = writePlugin(plugins.dir, 'shared', importing('shared', 'shared-dep'));
    symlinkSync(shared, path.join(ok, 'node_modules'));
    const artifact = await compiler.compile(ok);
    assert.match(artifact.bundle, /from a shared install/);
    // node_modules pointing at a plain directory: its files are no dependency, the import leads out
    const bad = writePlugin(plugins.dir, 'fake-modules', importing('fake-modules', 'secret'));
    symlinkSync(elsewhere.dir, path.join(bad, 'node_modules'));
    await refused(bad, /imports "secret"/);
  });

  test('a tsconfig.json extending a file outside is refused, naming the extends', async () => {
    const dir = writePlugin(plugins.dir, 'extends-out', pluginSource({ name: 'extends-out' }));
    writeFileSync(path.join(dir, 'tsconfig.json'), `{ // a comment\n "extends": "../../${path.basename(elsewhere.dir)}/base.json" }`);
    await refused(dir, /tsconfig\.json extends "\.\.\/\.\.\/.*base\.json"/);
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ extends: path.join(elsewhere.dir, 'base.json') }));
    await refused(dir, /tsconfig\.json extends/);
  });

  test("a plugin's own files, node_modules and tsconfig.json compile", async () => {
    const dir = writePlugin(
      plugins.dir,
      'own',
      pluginSource({
        name: 'own',
        head: "import { value } from 'own-dep';\nimport { local } from './local';",
        routes: "      server.get('/own', async () => ({ value, local }));",
      }),
    );
    writeFileSync(path.join(dir, 'local.ts'), "export const local = 'local';\n");
    mkdirSync(path.join(dir, 'node_modules', 'own-dep'), { recursive: true });
    writeFileSync(path.join(dir, 'node_modules', 'own-dep', 'package.json'), JSON.stringify({ name: 'own-dep', main: 'index.js' }));
    writeFileSync(path.join(dir, 'node_modules', 'own-dep', 'index.js'), "exports.value = 'dep';\n");
    writeFileSync(path.join(dir, 'tsconfig.base.json'), JSON.stringify({ compilerOptions: { target: 'es2022' } }));
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ extends: './tsconfig.base.json' }));
    const r = await compiler.compile(dir);
    assert.ok(r.hash.length > 0);
  });

  test('no artifact holds the outside file', () => {
    for (const f of readdirSync(artifacts.dir, { recursive: true }) as string[]) {
      const p = path.join(artifacts.dir, f);
      try {
        assert.ok(!readFileSync(p, 'utf8').includes(OUTSIDE_TEXT), f);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
      }
    }
  });
});
