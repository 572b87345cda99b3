import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const hostRequire = createRequire(import.meta.url);

/**
 * The SDK plugins are type-checked against: its TypeScript source when the host runs from its sources,
 * its declarations when it runs compiled (`dist/`, the installed package).
 */
export const SDK_ENTRY = path.resolve(path.dirname(here), '..', 'sdk', here.endsWith('.ts') ? 'index.ts' : 'index.d.ts');

/**
 * Declarations plugins are checked against, found from the host's own install (hoisted or nested, wherever
 * the user's project, the working directory or `PLUGINS_DIR` are): Node's types and Fastify's.
 */
export const TYPE_ROOTS = path.dirname(path.dirname(hostRequire.resolve('@types/node/package.json')));
export const FASTIFY_TYPES = path.join(path.dirname(hostRequire.resolve('fastify/package.json')), 'fastify.d.ts');
