/**
 * The module a worker thread starts from, given the module that spawns it (`import.meta.url`).
 * Compiled (`dist/`): the worker's own `.js` module. Run from the TypeScript sources through tsx (tests,
 * tools): a bootstrap `.mjs` beside it that registers tsx first, since a worker does not inherit its
 * parent's module loader.
 */
export function workerModule(spawner: string, name: string): URL {
  return spawner.endsWith('.ts') ? new URL(`./${name}-entry.mjs`, spawner) : new URL(`./${name}.js`, spawner);
}
