import type { FastifyBaseLogger } from 'fastify';
import type { CompileResult, Compiler } from '../compiler/index.js';
import type { PluginRepository } from '../db/index.js';
import { trialLoad } from '../loader/index.js';
import type { PluginMetadata } from '../sdk/index.js';

export interface PublishDeps {
  compiler: Compiler;
  repo: PluginRepository;
  log: FastifyBaseLogger;
  hookTimeoutMs: number;
}

export interface Published {
  artifact: CompileResult;
  metadata: PluginMetadata;
}

/**
 * Compiles a plugin directory, proves the result with a trial load (evaluate,
 * factory, metadata; no lifecycle hook runs) and stores the artifact in the
 * database so any node can load it by hash. The one path discovery, the admin
 * API and watch mode share before they write a plugin's row; it throws the
 * coded error of the first step that fails, having written nothing.
 */
export async function compileAndPublish(deps: PublishDeps, name: string, dir: string): Promise<Published> {
  const artifact = await deps.compiler.compileAsync(dir);
  const metadata = trialLoad({
    name,
    hash: artifact.hash,
    code: { kind: 'bundle', bundle: artifact.bundle, filename: artifact.path },
    sourceDir: dir,
    log: deps.log.child({ plugin: name }),
    hookTimeoutMs: deps.hookTimeoutMs,
  });
  await deps.repo.putArtifact({
    hash: artifact.hash,
    pluginName: name,
    version: metadata.version,
    format: artifact.format,
    bundle: artifact.bundle,
  });
  return { artifact, metadata };
}

/** The row fields a published version sets. */
export function publishedFields(p: Published): {
  artifactHash: string;
  binaryPath: string;
  version: string;
  description: string;
  author: string;
} {
  return {
    artifactHash: p.artifact.hash,
    binaryPath: p.artifact.path,
    version: p.metadata.version,
    description: p.metadata.description,
    author: p.metadata.author,
  };
}
