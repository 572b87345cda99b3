import path from 'node:path';
import type { PluginRow } from '../db/index.js';
import { sourceDirOf } from '../discovery/index.js';
import { HostError, pluginNotFound } from '../errors/index.js';
import { assertPluginName, type IsolationMode, type PluginStatus } from '../model/index.js';
import { resolvePluginDirectory } from './paths.js';
import { PluginConfigAdmin } from './plugin-config.js';
import { compileAndPublish, type Proven, publishedFields } from './publish.js';
import { type DiscoveryError, Registration, type RegistrationOptions } from './registration.js';
import { type UploadResult, uploadPlugin } from './upload.js';

export type PluginAdminOptions = RegistrationOptions;

export interface ReloadResult {
  row: PluginRow;
  /** True when the plugin was recompiled from source (and its artifact published). */
  recompiled: boolean;
}

/**
 * Every writer of desired state: the admin API, the CLI, discovery and static
 * plugins. Each change is one statement on the `plugins` table (the trigger
 * notifies every node, this one included); nothing here touches a running
 * plugin directly.
 */
export class PluginAdmin {
  private readonly registration: Registration;
  /** Plugins' configuration: read, validated, written as desired state. */
  readonly config: PluginConfigAdmin;

  constructor(private readonly o: PluginAdminOptions) {
    this.registration = new Registration(o);
    this.config = new PluginConfigAdmin(o);
  }

  /** Directories discovery found but could not register, by name (shown by the API with their error). */
  get discoveryErrors(): ReadonlyMap<string, DiscoveryError> {
    return this.registration.discoveryErrors;
  }

  /** Listens for discovery errors as they are noted. */
  onChange(listener: (name: string) => void): () => void {
    this.registration.on('change', listener);
    return () => this.registration.off('change', listener);
  }

  discoverAndRegister(): Promise<{ registered: string[]; failed: string[]; removed: string[] }> {
    return this.registration.discoverAndRegister();
  }

  registerStatic(): Promise<void> {
    return this.registration.registerStatic();
  }

  /**
   * Registers a directory given by name or path (it must lie directly inside
   * `PLUGINS_DIR`); `name`, when given, must equal the directory's. Throws
   * `PH_ERR_PLUGIN_EXISTS` for a registered name, or the coded error of the
   * compile or trial load, having written nothing.
   */
  async register(input: string, opts: { name?: string; status?: PluginStatus } = {}): Promise<PluginRow> {
    const dir = await resolvePluginDirectory(this.o.pluginsDir, input);
    const name = path.basename(dir);
    assertPluginName(name);
    if (opts.name !== undefined && opts.name !== name) {
      throw new HostError('PH_ERR_BAD_REQUEST', `name "${opts.name}" does not match the directory name "${name}"`);
    }
    if ((await this.o.repo.getByName(name)) !== undefined) throw exists(name);
    const { row, created } = await this.registration.registerDirectory(name, dir, {
      explicit: true,
      ...(opts.status === undefined ? {} : { status: opts.status }),
    });
    if (!created || row === undefined) throw exists(name);
    return row;
  }

  private async existing(name: string): Promise<PluginRow> {
    assertPluginName(name);
    const row = await this.o.repo.getByName(name);
    if (row === undefined) throw pluginNotFound(name);
    return row;
  }

  /**
   * Installs or updates a plugin from a `tar.gz` of its directory (`PUT /plugins/:name/source`, `plugin-host push`).
   * Throws a coded 4xx error for a hostile archive, or the compile or trial-load error, having stored nothing.
   */
  upload(name: string, archive: Buffer): Promise<UploadResult> {
    const sources = this.o.sources;
    if (sources === undefined) return Promise.reject(new HostError('PH_ERR_INTERNAL', 'uploads are not enabled on this host'));
    return uploadPlugin({ ...this.o, sources }, name, archive);
  }

  /** Sets the desired status; `changed` is false when it already had it (no write, no notification). */
  async setStatus(name: string, status: PluginStatus): Promise<{ row: PluginRow; changed: boolean }> {
    const row = await this.existing(name);
    if (row.status === status) return { row, changed: false };
    const updated = await this.o.repo.setStatus(name, status);
    if (updated === undefined) throw pluginNotFound(name);
    this.o.log.info({ plugin: name, status }, `plugin ${name} set ${status}`);
    return { row: updated, changed: true };
  }

  /**
   * Sets where the plugin runs (`inline`, `worker`, or null for the host's default); every node reloads it
   * blue/green into that runtime. `changed` is false when it already had it.
   */
  async setIsolation(name: string, mode: IsolationMode | null): Promise<{ row: PluginRow; changed: boolean }> {
    const row = await this.existing(name);
    if (row.isolation === mode) return { row, changed: false };
    this.o.runtimes.modeOf({ ...row, isolation: mode }); // refuses a static plugin in a worker
    const updated = await this.o.repo.update(name, { isolation: mode });
    if (updated === undefined) throw pluginNotFound(name);
    this.o.log.info({ plugin: name, isolation: mode }, `plugin ${name} isolation set to ${mode ?? 'the default'}`);
    return { row: updated, changed: true };
  }

  /** Flips active/inactive in one statement. */
  async toggle(name: string): Promise<PluginRow> {
    assertPluginName(name);
    const updated = await this.o.repo.toggle(name);
    if (updated === undefined) throw pluginNotFound(name);
    this.o.log.info({ plugin: name, status: updated.status }, `plugin ${name} toggled to ${updated.status}`);
    return updated;
  }

  /**
   * Deletes the row (endpoints cascade); every node unloads the plugin, and the removal is remembered:
   * discovery and watch mode do not register it again until someone registers it explicitly.
   */
  async remove(name: string, by = 'admin'): Promise<PluginRow> {
    assertPluginName(name);
    const deleted = await this.o.repo.delete(name, by);
    if (deleted === undefined) throw pluginNotFound(name);
    this.o.log.info({ plugin: name }, `plugin ${name} removed`);
    return deleted;
  }

  /**
   * A registered plugin's source changed (watch mode): prove it and publish
   * it as the version every node serves. On failure nothing is written.
   */
  async publishFromSource(name: string, dir: string): Promise<Proven> {
    const row = await this.existing(name);
    const proven = await compileAndPublish({ ...this.o, runtime: this.o.runtimes.get(this.o.runtimes.modeOf(row)) }, name, dir, 'watch');
    await this.o.repo.update(name, publishedFields(proven));
    return proven;
  }

  /**
   * Compiles the plugin's current source on this node, proves it (evaluate, factory, metadata) and publishes
   * it as a rollout's candidate; nothing is written on failure. Throws `PH_ERR_PLUGIN_SOURCE_MISSING` when
   * this node does not have the source.
   */
  async compileCandidate(name: string): Promise<Proven> {
    const row = await this.existing(name);
    const dir = row.type === 'dynamic' ? await sourceDirOf(row, this.o.pluginsDir) : undefined;
    if (dir === undefined) {
      throw new HostError(
        'PH_ERR_PLUGIN_SOURCE_MISSING',
        `${name}: this node does not have the source to compile a candidate; name a stored "version" or "hash", or ask a node that has it`,
      );
    }
    return compileAndPublish({ ...this.o, runtime: this.o.runtimes.get(this.o.runtimes.modeOf(row)) }, name, dir, 'rollout');
  }

  /**
   * Recompiles the plugin from its source (when this process has it inside
   * `PLUGINS_DIR`, or from its stored archive for an uploaded plugin), proves the result loads (evaluate, factory, metadata),
   * publishes the artifact and bumps `generation`, so every node reloads even
   * when the content is unchanged, and unpins a rolled-back plugin. A compile or
   * trial failure throws its coded error with nothing written.
   */
  async reload(name: string): Promise<ReloadResult> {
    const row = await this.existing(name);
    const patch: Partial<PluginRow> = {};
    let recompiled = false;
    // an uploaded plugin is recompiled from its stored archive, restored here if this node never had it
    const dir =
      row.type !== 'dynamic'
        ? undefined
        : row.sourceArchive !== null && this.o.sources !== undefined
          ? await this.o.sources.restore(row.name, row.sourceArchive)
          : await sourceDirOf(row, this.o.pluginsDir);
    if (dir !== undefined) {
      const runtime = this.o.runtimes.get(this.o.runtimes.modeOf(row));
      Object.assign(patch, publishedFields(await compileAndPublish({ ...this.o, runtime }, name, dir, 'reload')));
      recompiled = true;
    }
    // a reload serves the source again: a pin (a rollback) ends here
    if (row.pinnedHash !== null) Object.assign(patch, { pinnedHash: null, pinnedVersion: null });
    const updated = await this.o.repo.bumpGeneration(name, patch);
    if (updated === undefined) throw pluginNotFound(name);
    if (row.pinnedHash !== null) this.o.log.info({ plugin: name, hash: row.pinnedHash }, `plugin ${name} unpinned by a reload`);
    this.o.log.info(
      { plugin: name, generation: updated.generation, hash: updated.artifactHash, recompiled },
      `plugin ${name} reload requested (generation ${updated.generation})`,
    );
    return { row: updated, recompiled };
  }
}

function exists(name: string): HostError {
  return new HostError('PH_ERR_PLUGIN_EXISTS', `plugin "${name}" is already registered`);
}
