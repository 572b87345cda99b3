import { createRequire } from 'node:module';
import { SDK_VERSION } from '../sdk/index.js';

// esbuild's version is read from its manifest: a node that only loads artifacts never loads the bundler.
const esbuildVersion = (createRequire(import.meta.url)('esbuild/package.json') as { version: string }).version;

/**
 * Artifact format: CommonJS bundle with `fastify` and the SDK external. Part of
 * every artifact's hash and first line, so an artifact built by an
 * incompatible host is rebuilt rather than loaded. v2: `import()` lowered to the require shim.
 */
export const ARTIFACT_FORMAT = `cjs-v2;sdk=${SDK_VERSION.split('.')[0]};node=${process.versions.node.split('.')[0]};esbuild=${esbuildVersion}`;

const HEADER_PREFIX = '/* plugin-host artifact ';

/** The first line of every artifact: its format and hash. */
export function artifactHeader(format: string, hash: string): string {
  return `${HEADER_PREFIX}format=${format} hash=${hash} */\n`;
}

/** Reads the format recorded in an artifact's first line. */
export function artifactFormatOf(bundle: string): string | undefined {
  if (!bundle.startsWith(HEADER_PREFIX)) return undefined;
  const line = bundle.slice(0, bundle.indexOf('\n'));
  return /format=(\S+)/.exec(line)?.[1];
}
