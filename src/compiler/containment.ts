import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type * as esbuild from 'esbuild';
import { HostError } from '../errors/index.js';
import { pathExists } from '../fs-exists.js';

/**
 * A compile reads only the plugin's own directory: its sources, its own
 * `node_modules`, its own `tsconfig.json`. The SDK, Fastify and Node's
 * built-ins are left external (provided by the host at run time), so nothing
 * else needs to be read; an import of an absolute or `../` path, or a
 * `tsconfig.json` extending a file elsewhere, would otherwise put another
 * directory's files (another plugin's sources, the host's configuration) into
 * the artifact, which the host then serves and publishes.
 */

// asynchronous throughout: a compile runs on a serving node, whose thread must not wait on the file system
async function realOrResolved(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

function inside(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/**
 * Where a plugin's compile may read: its directory, and its own `node_modules` wherever that leads (a link to a
 * shared install, as pnpm or a workspace lays them out, is the author's choice of dependencies, not an escape).
 */
async function rootsOf(dir: string): Promise<string[]> {
  const roots = [await realOrResolved(dir)];
  const modules = path.join(dir, 'node_modules');
  if (await pathExists(modules)) {
    // only a real node_modules directory: a link named node_modules pointing at `/` or a home directory is no install
    const real = await realOrResolved(modules);
    if (path.basename(real) === 'node_modules') roots.push(real);
  }
  return roots;
}

function insideAny(p: string, roots: readonly string[]): boolean {
  return roots.some((r) => inside(p, r));
}

function outside(dir: string, what: string, message: string, details: Record<string, unknown>): HostError {
  return new HostError('PH_ERR_COMPILE_OUTSIDE', `${dir}: ${what} ${message}`, { details });
}

/** `tsconfig.json` text read as JSON: comments and trailing commas allowed, as TypeScript allows them. */
function parseTsconfig(text: string): unknown {
  const stripped = text
    .replace(/("(?:[^"\\]|\\.)*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (_m, str: string | undefined) => str ?? '')
    .replace(/,(\s*[}\]])/g, '$1');
  try {
    return JSON.parse(stripped);
  } catch {
    return undefined;
  }
}

/**
 * The `tsconfig` options of esbuild for the plugin in `dir`: its own
 * `tsconfig.json`, after checking that every file it `extends` (a relative
 * path, or a package of its own `node_modules`) lies inside `dir`; none
 * (`tsconfigRaw: {}`) when it has no such file, so esbuild does not look for
 * one in the directories above. Throws `PH_ERR_COMPILE_OUTSIDE` naming the
 * `extends` that leads out.
 */
export async function tsconfigFor(dir: string): Promise<Pick<esbuild.BuildOptions, 'tsconfig' | 'tsconfigRaw'>> {
  const file = path.join(dir, 'tsconfig.json');
  if (!(await pathExists(file))) return { tsconfigRaw: {} };
  const root = await realOrResolved(dir);
  const roots = await rootsOf(dir);
  const seen = new Set<string>();
  const visit = async (configFile: string): Promise<void> => {
    const real = await realOrResolved(configFile);
    if (seen.has(real)) return;
    seen.add(real);
    const parsed = parseTsconfig(await readFile(real, 'utf8')) as { extends?: unknown } | undefined;
    const ext = parsed?.extends;
    const list = typeof ext === 'string' ? [ext] : Array.isArray(ext) ? ext.filter((e): e is string => typeof e === 'string') : [];
    for (const e of list) {
      const base = path.dirname(configFile);
      const target =
        e.startsWith('.') || path.isAbsolute(e)
          ? path.resolve(base, e)
          : path.join(root, 'node_modules', e.endsWith('.json') ? e : path.join(e, 'tsconfig.json'));
      const withJson = (await pathExists(target)) || target.endsWith('.json') ? target : `${target}.json`;
      const resolved = await realOrResolved(withJson);
      if (!insideAny(resolved, roots)) {
        throw outside(dir, `tsconfig.json extends "${e}"`, `(${resolved}), outside the plugin's directory`, { extends: e, resolved });
      }
      if (await pathExists(resolved)) await visit(resolved);
    }
  };
  await visit(file);
  return { tsconfig: file };
}

/**
 * Throws `PH_ERR_COMPILE_OUTSIDE` when the bundle read a file outside `dir`
 * (symbolic links resolved), naming the import that brought it in and the
 * file that imported it. `metafile` is esbuild's, whose input paths are
 * relative to `dir`.
 */
export async function assertInside(dir: string, metafile: esbuild.Metafile): Promise<void> {
  const roots = await rootsOf(dir);
  const abs = (p: string) => realOrResolved(path.resolve(dir, p));
  for (const [importer, input] of Object.entries(metafile.inputs)) {
    for (const imp of input.imports) {
      if (imp.external === true) continue;
      const target = await abs(imp.path);
      if (insideAny(target, roots)) continue;
      throw outside(
        dir,
        `${path.relative(dir, await abs(importer))} imports "${imp.original ?? imp.path}"`,
        `(${target}), outside the plugin's directory and its node_modules`,
        { import: imp.original ?? imp.path, importer, resolved: target },
      );
    }
  }
  for (const input of Object.keys(metafile.inputs)) {
    const file = await abs(input);
    if (!insideAny(file, roots)) throw outside(dir, `the bundle reads ${file}`, "outside the plugin's directory", { resolved: file });
  }
}
