import { existsSync, lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Compiler } from '../compiler/index.js';
import { isConnectionError, type PluginRepository, type PluginRow, type PluginStatus } from '../db/index.js';
import { resolveInside } from '../discovery/index.js';
import { describeError, HostError } from '../errors/index.js';
import { assertPluginName } from '../loader/index.js';
import { compileAndPublish, publishedFields } from '../manager/publish.js';

export { readServerInfo, removeServerInfo, SERVER_INFO_FILE, type ServerInfo, writeServerInfo } from './server-info.js';

export interface PluginAdminOptions {
  repo: PluginRepository;
  compiler: Compiler;
  pluginsDir: string;
  hookTimeoutMs: number;
  log: FastifyBaseLogger;
}

export interface ReloadResult {
  row: PluginRow;
  /** True when the plugin was recompiled from source (and its artifact published). */
  recompiled: boolean;
}

/**
 * Resolves a directory given to `POST /plugins` (a name relative to
 * `PLUGINS_DIR`, or an absolute path) and returns its real path. Only a
 * directory directly inside `PLUGINS_DIR` is accepted: `..` segments, absolute
 * paths elsewhere, nested directories and symlinks pointing out are refused.
 */
export function resolvePluginDirectory(pluginsDir: string, input: string): string {
  if (input.includes('\0')) throw new HostError('PH_ERR_PLUGIN_PATH_OUTSIDE', 'path contains a NUL byte');
  const shown = JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input);
  const root = realpathSync(pluginsDir);
  const given = path.resolve(pluginsDir);
  const candidate = path.isAbsolute(input) ? path.resolve(input) : path.resolve(root, input);
  // Lexical check first, so a path that leaves PLUGINS_DIR is refused whether or not it exists.
  const childOf = (base: string) => path.dirname(candidate) === base;
  if (!childOf(root) && !childOf(given)) {
    throw new HostError('PH_ERR_PLUGIN_PATH_OUTSIDE', `path ${shown} is not a directory directly inside the plugins directory`);
  }
  if (!existsSync(candidate)) {
    throw new HostError('PH_ERR_PLUGIN_NO_ENTRY', `path ${shown} does not exist in the plugins directory`);
  }
  const real = resolveInside(pluginsDir, candidate);
  if (real === undefined || path.dirname(real) !== root) {
    // exists and is lexically inside, but its real path is not: a symlink out
    throw new HostError('PH_ERR_PLUGIN_PATH_OUTSIDE', `path ${shown} resolves (through a symlink) outside the plugins directory`);
  }
  if (!lstatSync(real).isDirectory()) throw new HostError('PH_ERR_PLUGIN_NO_ENTRY', `path ${shown} is not a directory`);
  return real;
}

/** Maps a database outage to `PH_ERR_DB_UNAVAILABLE` (503); anything else passes through. */
export function dbErrors(err: unknown): never {
  if (isConnectionError(err) || isConnectionError((err as { cause?: unknown })?.cause)) {
    throw new HostError('PH_ERR_DB_UNAVAILABLE', `database unavailable: ${describeError(err)}`, { cause: err });
  }
  throw err;
}

/**
 * The writes of desired state made by the admin API and the CLI. Each one is a
 * single statement on the `plugins` table (the trigger notifies every node);
 * nothing here touches a running plugin directly.
 */
export class PluginAdmin {
  constructor(private readonly o: PluginAdminOptions) {}

  private async existing(name: string): Promise<PluginRow> {
    assertPluginName(name);
    const row = await this.o.repo.getByName(name).catch(dbErrors);
    if (row === undefined) throw new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not registered`);
    return row;
  }

  /** Sets the desired status; `changed` is false when it already had it (no write, no notification). */
  async setStatus(name: string, status: PluginStatus): Promise<{ row: PluginRow; changed: boolean }> {
    const row = await this.existing(name);
    if (row.status === status) return { row, changed: false };
    const updated = await this.o.repo.setStatus(name, status).catch(dbErrors);
    if (updated === undefined) throw new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not registered`);
    this.o.log.info({ plugin: name, status }, `plugin ${name} set ${status}`);
    return { row: updated, changed: true };
  }

  /** Flips active/inactive in one statement. */
  async toggle(name: string): Promise<PluginRow> {
    assertPluginName(name);
    const updated = await this.o.repo.toggle(name).catch(dbErrors);
    if (updated === undefined) throw new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not registered`);
    this.o.log.info({ plugin: name, status: updated.status }, `plugin ${name} toggled to ${updated.status}`);
    return updated;
  }

  /** Deletes the row (endpoints cascade); every node unloads the plugin. */
  async remove(name: string): Promise<PluginRow> {
    assertPluginName(name);
    const deleted = await this.o.repo.delete(name).catch(dbErrors);
    if (deleted === undefined) throw new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not registered`);
    this.o.log.info({ plugin: name }, `plugin ${name} removed`);
    return deleted;
  }

  /**
   * Recompiles the plugin from its source (when this process has it inside
   * `PLUGINS_DIR`), proves the result loads (evaluate, factory, metadata),
   * publishes the artifact and bumps `generation`, so every node reloads even
   * when the content is unchanged. A compile or trial failure throws its coded
   * error with nothing written.
   */
  async reload(name: string): Promise<ReloadResult> {
    const row = await this.existing(name);
    const patch: Partial<PluginRow> = {};
    let recompiled = false;
    const source = row.sourcePath ?? row.path;
    const dir = row.type === 'dynamic' && source !== null ? resolveInside(this.o.pluginsDir, source) : undefined;
    if (dir !== undefined) {
      const published = await compileAndPublish(this.o, name, dir).catch(dbErrors);
      Object.assign(patch, publishedFields(published));
      recompiled = true;
    }
    const updated = await this.o.repo.bumpGeneration(name, patch).catch(dbErrors);
    if (updated === undefined) throw new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" is not registered`);
    this.o.log.info(
      { plugin: name, generation: updated.generation, hash: updated.artifactHash, recompiled },
      `plugin ${name} reload requested (generation ${updated.generation})`,
    );
    return { row: updated, recompiled };
  }
}
