import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How a plugin process is started: Node's permission model with reads of the
 * host's own code only (the plugin's bundle arrives over the IPC channel, not
 * through the file system), no writes, child processes, workers, addons or
 * WASI; an empty environment; a heap cap; and, when the host runs as root,
 * another user.
 */
export interface ProcessIdentity {
  uid: number;
  gid: number;
}

/**
 * The flag that turns the permission model on: `--permission` where Node has
 * it (stable since 22.13 and 23.5), `--experimental-permission` before (Node 20, 21).
 */
export function permissionFlag(): string {
  return process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission';
}

/**
 * What the plugin process may read: the directory of the host's compiled code
 * (`dist/` or, from the sources, `src/`), the `node_modules` it imports from
 * (beside it, or the one it is installed in), and its `package.json`. Never
 * the data directory, the artifacts, the plugins directory or another plugin.
 */
export function readablePaths(entry: URL): string[] {
  const file = fileURLToPath(entry);
  // <root>/<dist|src>/runtime/process/<entry>
  const code = path.resolve(path.dirname(file), '..', '..');
  const root = path.dirname(code);
  const paths = [code, path.join(root, 'package.json')];
  const own = path.join(root, 'node_modules');
  if (existsSync(own)) paths.push(own);
  // installed as a dependency: its own dependencies may be hoisted beside it
  if (path.basename(path.dirname(root)) === 'node_modules') paths.push(path.dirname(root));
  return paths;
}

/** The node options of a plugin process (before its entry module). */
export function execArgvFor(entry: URL, memoryMb: number, fromSources: boolean): string[] {
  return [
    permissionFlag(),
    ...readablePaths(entry).map((p) => `--allow-fs-read=${p}`),
    // the permission model's own start-up notice is not the plugin's business
    '--no-warnings',
    `--max-old-space-size=${memoryMb}`,
    // From the TypeScript sources (tests, tools, never the compiled host): tsx's loader, named by URL since the
    // process starts in `/`. Its hooks run in a worker thread of Node's own and compile through esbuild's service
    // process, which the permission model must then allow; plugin code is still refused `node:worker_threads` and
    // `node:child_process` by the bundle's require. The compiled host (dist/) never gets these two flags.
    ...(fromSources ? ['--allow-worker', '--allow-child-process', '--import', import.meta.resolve('tsx')] : []),
  ];
}

/** The uid and gid of `name` in /etc/passwd, or undefined. */
function passwdEntry(name: string): ProcessIdentity | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , uid, gid] = line.split(':');
      if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no passwd file: the numeric fallback applies
  }
  return undefined;
}

/**
 * The user a plugin process runs as: `PLUGIN_UID`/`PLUGIN_GID` (numbers or
 * names), default `nobody` (65534 when the passwd file does not name it).
 * Undefined when the host is not root: it cannot change user, and the plugin
 * process runs as the host's user (which can signal the host: see the README).
 */
export function identityFor(uid: string | undefined, gid: string | undefined): ProcessIdentity | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const resolve = (v: string | undefined, pick: 'uid' | 'gid'): number => {
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
    return passwdEntry(v ?? 'nobody')?.[pick] ?? 65534;
  };
  return { uid: resolve(uid, 'uid'), gid: resolve(gid ?? uid, 'gid') };
}
