import path from 'node:path';
import type { ArtifactStore } from '../artifacts/index.js';
import type { CompileResult, PluginCompiler } from '../compiler/index.js';
import type { PluginRow } from '../db/index.js';
import { hashSource, sourceDirOf } from '../discovery/index.js';
import { HostError, isHostError } from '../errors/index.js';
import { pathExists } from '../fs-exists.js';
import type { IsolationMode } from '../model/index.js';
import type { PluginCode, Runtimes } from '../runtime/index.js';
import type { PluginFactory } from '../sdk/index.js';
import type { SourceArchives } from '../uploads/index.js';
import type { ServedFrom } from './observed.js';

/** A row resolved into the code of one version, ready for a runtime to load. */
export interface Resolved {
  hash: string;
  /** The runtime the version is to run in. */
  mode: IsolationMode;
  from: ServedFrom;
  code: PluginCode;
  sourceDir: string | undefined;
  /** Set when this node compiled the artifact from source (and so may publish it). */
  artifact: CompileResult | undefined;
  /**
   * Set when the source's type check was still running as this was resolved (`early`): the version may
   * load meanwhile, but is swapped in only once this resolved; a rejection is the check's coded error.
   */
  checked?: Promise<void>;
}

export interface ResolverOptions {
  pluginsDir: string;
  compiler: PluginCompiler;
  artifacts: ArtifactStore;
  runtimes: Runtimes;
  staticPlugins?: ReadonlyMap<string, PluginFactory> | undefined;
  /** Source archives of uploaded plugins (restored to recompile one whose artifact cannot be used). */
  sources?: SourceArchives | undefined;
}

/** Failures of the plugin's source itself, as opposed to the desired state or the environment. */
const SOURCE_ERRORS = new Set([
  'PH_ERR_COMPILE_SYNTAX',
  'PH_ERR_COMPILE_TYPE',
  'PH_ERR_COMPILE_RESOLVE',
  'PH_ERR_COMPILE_LIMIT',
  'PH_ERR_PLUGIN_NO_ENTRY',
  'PH_ERR_LOAD_NO_FACTORY',
]);

/** An artifact that cannot be used, which an uploaded plugin's stored source can replace. */
const ARTIFACT_UNUSABLE = new Set(['PH_ERR_ARTIFACT_MISSING', 'PH_ERR_ARTIFACT_INCOMPATIBLE', 'PH_ERR_ARTIFACT_INTEGRITY']);

export function isSourceError(err: unknown): boolean {
  return isHostError(err) && SOURCE_ERRORS.has(err.code);
}

/**
 * Turns a `plugins` row into the code to load: a static factory, the source
 * compiled here (when this node has it inside `PLUGINS_DIR`), the published
 * artifact from the store, or for an uploaded plugin its artifact, else its
 * stored source archive. Throws the coded error of the first
 * step that fails.
 */
export class Resolver {
  constructor(private readonly o: ResolverOptions) {}

  /**
   * With `early`, a source compiled here resolves once bundled, its type check still running
   * (`Resolved.checked`): a reload loads the new version while it is checked.
   */
  async resolve(row: PluginRow, opts: { early?: boolean } = {}): Promise<Resolved> {
    const mode = this.o.runtimes.modeOf(row);
    return { ...(await this.code(row, opts.early === true)), mode };
  }

  private async code(row: PluginRow, early: boolean): Promise<Omit<Resolved, 'mode'>> {
    if (row.type === 'static') {
      const factory = this.o.staticPlugins?.get(row.name);
      if (factory === undefined)
        throw new HostError('PH_ERR_ARTIFACT_MISSING', `${row.name}: static plugin is not compiled into this host`);
      return {
        hash: `static:${row.version}`,
        from: 'static',
        code: { kind: 'static', factory },
        sourceDir: undefined,
        artifact: undefined,
      };
    }
    if (row.type !== 'dynamic')
      throw new HostError('PH_ERR_DESIRED_STATE_INVALID', `${row.name}: unknown type "${row.type}" (expected dynamic or static)`);
    if (row.sourceArchive !== null && this.o.sources !== undefined) return this.uploaded(row, this.o.sources, row.sourceArchive);
    const dir = await sourceDirOf(row, this.o.pluginsDir);
    if (dir !== undefined) {
      if (path.basename(dir) !== row.name) {
        throw new HostError(
          'PH_ERR_DESIRED_STATE_INVALID',
          `${row.name}: source directory ${path.basename(dir)} does not match the plugin name`,
        );
      }
      return this.compiled(dir, early);
    }
    // No usable source here: load the published artifact by hash (disk cache first, then the database).
    const source = row.sourcePath ?? row.path;
    if (row.artifactHash === null) {
      // the row names a source that exists but is not inside PLUGINS_DIR (resolved above to nothing)
      if (source !== null && (await pathExists(path.resolve(this.o.pluginsDir, source)))) {
        throw new HostError(
          'PH_ERR_PLUGIN_PATH_OUTSIDE',
          `${row.name}: source path ${source} is outside PLUGINS_DIR (${this.o.pluginsDir}); refusing to load it`,
        );
      }
      throw new HostError(
        'PH_ERR_PLUGIN_SOURCE_MISSING',
        `${row.name}: source ${source ?? '(none)'} is not available on this node and no artifact was published`,
      );
    }
    const { mode: _mode, ...r } = await this.fromArtifact(row, row.artifactHash);
    return r;
  }

  /**
   * An uploaded plugin: its published artifact when it can be used; otherwise (missing, built by an
   * incompatible host, failing its check) the source restored from the stored archive and compiled here.
   */
  private async uploaded(row: PluginRow, sources: SourceArchives, archive: string): Promise<Omit<Resolved, 'mode'>> {
    if (row.artifactHash !== null) {
      try {
        const { mode: _mode, ...r } = await this.fromArtifact(row, row.artifactHash);
        return r;
      } catch (err) {
        if (!(isHostError(err) && ARTIFACT_UNUSABLE.has(err.code))) throw err;
      }
    }
    return this.compiled(await sources.restore(row.name, archive));
  }

  /** The plugin source in `dir`, compiled here (or its artifact, when the compiler has it already). */
  private async compiled(dir: string, early = false): Promise<Omit<Resolved, 'mode'>> {
    const compiler = this.o.compiler;
    const ahead = early && compiler.compileAhead !== undefined ? await compiler.compileAhead(dir) : undefined;
    const artifact = ahead?.result ?? (await compiler.compile(dir));
    return {
      hash: artifact.hash,
      from: 'source',
      code: { kind: 'bundle', bundle: artifact.bundle, filename: artifact.path },
      sourceDir: dir,
      artifact,
      ...(ahead === undefined ? {} : { checked: ahead.checked }),
    };
  }

  /** A published artifact by hash: the disk cache first, then the database. */
  async fromArtifact(row: PluginRow, hash: string): Promise<Resolved> {
    const artifact = await this.o.artifacts.fetch(row.name, hash);
    return {
      mode: this.o.runtimes.modeOf(row),
      hash: artifact.hash,
      from: 'artifact',
      code: { kind: 'bundle', bundle: artifact.bundle, filename: artifact.path },
      sourceDir: undefined,
      artifact: undefined,
    };
  }

  /**
   * Changes whenever what a failed resolution depended on changes: the row's
   * artifact, source path and generation, and the source tree's content.
   */
  async failureKey(row: PluginRow): Promise<string> {
    return `resolve:${row.artifactHash}:${row.sourcePath}:${await this.sourceHash(row)}:${row.generation}`;
  }

  /** Whether this node has the plugin's source and it is not the version `hash` (a pinned plugin says so). */
  async sourceDiffers(row: PluginRow, hash: string): Promise<boolean> {
    const dir = await sourceDirOf(row, this.o.pluginsDir);
    // artifacts are keyed by the hash of their source tree: no compile is needed to compare
    return dir !== undefined && (await hashOrEmpty(dir)) !== hash;
  }

  /** The content hash of the row's source on this node ('' when it has none here or it cannot be read). */
  async sourceHash(row: PluginRow): Promise<string> {
    const dir = await sourceDirOf(row, this.o.pluginsDir);
    return dir === undefined ? '' : hashOrEmpty(dir);
  }

  /** Checks, in one program, the sources of every active dynamic plugin among `rows` (the first full reconcile). */
  async prepare(rows: readonly PluginRow[]): Promise<void> {
    const active = rows.filter((r) => r.type === 'dynamic' && r.status === 'active');
    const dirs = await Promise.all(active.map((r) => sourceDirOf(r, this.o.pluginsDir)));
    return this.o.compiler.prepare(dirs.filter((d): d is string => d !== undefined));
  }
}

/** The content hash of a source tree, or '' when it cannot be read. */
async function hashOrEmpty(dir: string): Promise<string> {
  try {
    return await hashSource(dir);
  } catch {
    return '';
  }
}
