import { HostError } from '../../errors/index.js';

/**
 * Built-in modules a confined plugin (worker or process) may not load: each
 * reaches past the confinement in one call. `inspector` attaches to the
 * serving thread (`Session.connectToMainThread()`) and evaluates code there;
 * `child_process`, `cluster` and `worker_threads` start code outside the
 * plugin's limits; `module` (`createRequire`) and `wasi` load what the
 * bundle's `require` refuses. Names without the `node:` prefix.
 */
export const FORBIDDEN_MODULES: readonly string[] = [
  'inspector',
  'inspector/promises',
  'child_process',
  'cluster',
  'worker_threads',
  'module',
  'wasi',
];

const FORBIDDEN = new Set(FORBIDDEN_MODULES);

function bare(id: string): string {
  return id.startsWith('node:') ? id.slice(5) : id;
}

/** The reason `id` may not be loaded by a confined plugin, or undefined when it may. */
export function forbiddenReason(id: string): string | undefined {
  if (FORBIDDEN.has(bare(id))) return `the built-in module "${id}" reaches outside the plugin's confinement`;
  if (id.endsWith('.node')) return `"${id}" is a native addon`;
  return undefined;
}

export function forbiddenModule(plugin: string, id: string, reason: string): HostError {
  return new HostError('PH_ERR_LOAD_FORBIDDEN_MODULE', `${plugin}: cannot load "${id}" in a confined runtime: ${reason}`, {
    details: { module: id },
  });
}

/** `require("x")` calls with a literal argument, as the compiler's CommonJS output writes them. */
const LITERAL_REQUIRE = /\brequire\(\s*(["'`])([^"'`\n]+)\1\s*\)/g;

/**
 * Refuses, before any of its code runs, a bundle that requires a forbidden
 * module by name: the load fails with `PH_ERR_LOAD_FORBIDDEN_MODULE` naming the
 * module, whether the require sits at the top of the module or in a handler.
 * A require with a computed name is refused by the bundle's `require` when it is called.
 */
export function assertNoForbiddenImports(plugin: string, bundle: string): void {
  for (const m of bundle.matchAll(LITERAL_REQUIRE)) {
    const id = m[2] as string;
    const why = forbiddenReason(id);
    if (why !== undefined) throw forbiddenModule(plugin, id, why);
  }
}

/**
 * Closes the paths around `require` in a confined runtime's own process or
 * thread: `process.binding` and `process._linkedBinding` (internal bindings,
 * `spawn_sync` among them), `process.dlopen` (native addons) and, where Node has
 * it, `process.getBuiltinModule`. Called once, before any plugin code runs.
 */
export function closeProcessEscapes(plugin: string): void {
  const refuse = (what: string) => () => {
    throw forbiddenModule(plugin, what, `${what} is not available to a confined plugin`);
  };
  const p = process as unknown as Record<string, unknown>;
  for (const key of ['binding', '_linkedBinding', 'dlopen']) {
    Object.defineProperty(p, key, { value: refuse(`process.${key}`), writable: false, configurable: false });
  }
  if (typeof p.getBuiltinModule === 'function') {
    const original = p.getBuiltinModule as (id: string) => unknown;
    Object.defineProperty(p, 'getBuiltinModule', {
      value: (id: string) => {
        const why = forbiddenReason(id);
        if (why !== undefined) throw forbiddenModule(plugin, id, why);
        return original.call(process, id);
      },
      writable: false,
      configurable: false,
    });
  }
}
