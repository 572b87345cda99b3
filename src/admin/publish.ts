import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactStore } from '../artifacts/index.js';
import type { CompileResult, PluginCompiler } from '../compiler/index.js';
import type { PluginRuntime } from '../runtime/index.js';
import type { PluginMetadata } from '../sdk/index.js';

export interface ProveDeps {
  compiler: PluginCompiler;
  runtime: PluginRuntime;
  log: FastifyBaseLogger;
  hookTimeoutMs: number;
}

export interface Proven {
  artifact: CompileResult;
  metadata: PluginMetadata;
}

/**
 * Compiles a plugin directory and proves the result with a trial load
 * (evaluate, factory, metadata; no lifecycle hook runs). The one path every
 * writer of a new version takes before anything is written — discovery, the
 * admin API, watch mode — and what `plugin-host build` runs. Throws the coded
 * error of the first step that fails.
 */
export async function prove(deps: ProveDeps, name: string, dir: string): Promise<Proven> {
  // the trial runs while the source is type-checked (when the compiler can tell the two apart); the proof
  // is complete only once the check passed, and a failed check is the error reported, not the trial's
  const ahead = deps.compiler.compileAhead === undefined ? undefined : await deps.compiler.compileAhead(dir);
  const artifact = ahead?.result ?? (await deps.compiler.compile(dir));
  let metadata: PluginMetadata;
  try {
    metadata = await deps.runtime.trial({
      name,
      hash: artifact.hash,
      code: { kind: 'bundle', bundle: artifact.bundle, filename: artifact.path },
      sourceDir: dir,
      log: deps.log.child({ plugin: name }),
      hookTimeoutMs: deps.hookTimeoutMs,
      config: {},
    });
  } catch (err) {
    await ahead?.checked;
    throw err;
  }
  await ahead?.checked;
  return { artifact, metadata };
}

/**
 * Proves a plugin directory, then stores its artifact so any node can load it by hash, recorded in the version
 * history under `action` (register, discovery, reload, watch, rollout); nothing is written on failure.
 */
export async function compileAndPublish(
  deps: ProveDeps & { artifacts: ArtifactStore },
  name: string,
  dir: string,
  action: string,
): Promise<Proven> {
  const proven = await prove(deps, name, dir);
  await deps.artifacts.publish({
    hash: proven.artifact.hash,
    pluginName: name,
    version: proven.metadata.version,
    format: proven.artifact.format,
    bundle: proven.artifact.bundle,
    history: { action, metadata: proven.metadata },
  });
  return proven;
}

/** The row fields a published version sets. */
export function publishedFields(p: Proven): {
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
