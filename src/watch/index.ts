import { EventEmitter } from 'node:events';
import { type FSWatcher, readdirSync, realpathSync, statSync, watch } from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { PluginAdmin } from '../admin/index.js';
import type { PluginRepository } from '../db/index.js';
import { hashSource, sourceDirOf } from '../discovery/index.js';
import { describeError, isHostError, recordError } from '../errors/index.js';
import { Lanes } from '../lanes/index.js';
import type { PluginManager } from '../manager/index.js';

export interface WatcherOptions {
  pluginsDir: string;
  repo: PluginRepository;
  admin: PluginAdmin;
  manager: PluginManager;
  debounceMs: number;
  log: FastifyBaseLogger;
}

/** What one handled change led to (emitted as `handled`, logged, used by tests and metrics). */
export type WatchOutcome =
  | { kind: 'published'; hash: string; version: string }
  | { kind: 'unchanged' }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'discovered'; registered: boolean }
  | { kind: 'ignored'; reason: string };

export interface WatcherEvents {
  handled: [name: string, outcome: WatchOutcome];
}

/** Directories inside a plugin that are never watched (dependencies, VCS, editor state). */
function skipDir(name: string): boolean {
  return name.startsWith('.') || name === 'node_modules';
}

/**
 * Hot recompilation. Watches `PLUGINS_DIR` and every plugin directory under
 * it (each subdirectory separately, so it works on every platform). Events
 * are debounced per plugin; then:
 * - a registered plugin whose content hash changed is compiled and trial-loaded
 *   here; on success its artifact is published and its row updated (new
 *   `artifact_hash`), so every node, this one included, reloads it through the
 *   notification; on failure nothing is written, the serving version stays and
 *   the error (with file:line:column) is recorded in this node's observed state;
 * - a directory the database does not know is discovered and registered.
 */
export class PluginWatcher extends EventEmitter<WatcherEvents> {
  private readonly root: string;
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** One handling in flight per plugin; events arriving meanwhile collapse into one more run. */
  private readonly lanes: Lanes;
  /** Content hash of the last failed attempt per plugin: not retried until the content changes. */
  private readonly lastFailed = new Map<string, string>();
  private stopped = false;

  constructor(private readonly o: WatcherOptions) {
    super();
    this.root = realpathSync(o.pluginsDir);
    this.lanes = new Lanes(
      (name) => this.handleOnce(name),
      () => {},
    );
  }

  start(): this {
    this.watchDir(this.root, undefined);
    for (const e of readdirSync(this.root, { withFileTypes: true })) {
      if (e.isDirectory() && !skipDir(e.name)) this.watchTree(path.join(this.root, e.name), e.name);
    }
    this.o.log.info({ pluginsDir: this.root, debounceMs: this.o.debounceMs }, `watching ${this.root} for plugin changes`);
    return this;
  }

  /** Number of directories watched (for diagnostics). */
  get watchedDirectories(): number {
    return this.watchers.size;
  }

  private watchDir(dir: string, plugin: string | undefined): void {
    if (this.stopped || this.watchers.has(dir)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: false }, (_event, filename) => this.onEvent(dir, plugin, filename?.toString()));
    } catch (err) {
      this.o.log.debug({ dir, err: describeError(err) }, 'cannot watch directory');
      return;
    }
    w.on('error', () => this.unwatch(dir));
    this.watchers.set(dir, w);
  }

  private watchTree(dir: string, plugin: string): void {
    this.watchDir(dir, plugin);
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory() && !skipDir(e.name)) this.watchTree(path.join(dir, e.name), plugin);
  }

  private unwatch(prefix: string): void {
    for (const [dir, w] of this.watchers) {
      if (dir === prefix || dir.startsWith(prefix + path.sep)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
  }

  private onEvent(dir: string, plugin: string | undefined, filename: string | undefined): void {
    if (this.stopped) return;
    if (plugin === undefined) {
      // an entry of PLUGINS_DIR itself appeared, changed or vanished
      if (filename === undefined || skipDir(filename)) return;
      const full = path.join(this.root, filename);
      if (isDirectory(full)) this.watchTree(full, filename);
      else this.unwatch(full);
      this.schedule(filename);
      return;
    }
    if (filename !== undefined) {
      const first = filename.split(path.sep)[0] ?? filename;
      if (skipDir(first)) return;
      const full = path.join(dir, filename);
      if (isDirectory(full)) this.watchTree(full, plugin);
    }
    this.schedule(plugin);
  }

  private schedule(name: string): void {
    clearTimeout(this.timers.get(name));
    const t = setTimeout(() => {
      this.timers.delete(name);
      this.run(name);
    }, this.o.debounceMs);
    t.unref();
    this.timers.set(name, t);
  }

  private run(name: string): void {
    void this.lanes.request(name);
  }

  private async handleOnce(name: string): Promise<void> {
    if (this.stopped) return;
    let outcome: WatchOutcome;
    try {
      outcome = await this.handle(name);
    } catch (err) {
      outcome = { kind: 'failed', ...recordError(err) };
      this.o.log.error({ plugin: name, err: describeError(err) }, `handling a change of ${name} failed: ${describeError(err)}`);
    }
    if (!this.stopped) this.emit('handled', name, outcome);
  }

  private async handle(name: string): Promise<WatchOutcome> {
    const dir = path.join(this.root, name);
    if (!isDirectory(dir)) {
      this.unwatch(dir);
      return { kind: 'ignored', reason: 'not a directory (or removed)' };
    }
    const row = await this.o.repo.getByName(name);
    if (row === undefined) {
      const { registered, failed, removed } = await this.o.admin.discoverAndRegister();
      if (removed.includes(name)) {
        this.o.log.info(
          { plugin: name },
          `plugin ${name} was removed; its directory changed but it stays removed until registered explicitly`,
        );
        return { kind: 'ignored', reason: 'removed' };
      }
      if (registered.includes(name)) this.o.log.info({ plugin: name }, `new plugin directory ${name} registered`);
      return { kind: 'discovered', registered: registered.includes(name) && !failed.includes(name) };
    }
    if (row.type !== 'dynamic') return { kind: 'ignored', reason: `type ${row.type}` };
    if ((await sourceDirOf(row, this.root)) !== dir) return { kind: 'ignored', reason: 'registered from another directory' };

    const hash = await hashSource(dir);
    if (hash === row.artifactHash) {
      this.lastFailed.delete(name);
      return { kind: 'unchanged' };
    }
    if (this.lastFailed.get(name) === hash) return { kind: 'unchanged' };
    try {
      const { artifact, metadata } = await this.o.admin.publishFromSource(name, dir);
      this.lastFailed.delete(name);
      this.o.log.info(
        { plugin: name, hash: artifact.hash, version: metadata.version },
        `plugin ${name} changed on disk: published ${artifact.hash} (${metadata.version}); nodes reload it`,
      );
      return { kind: 'published', hash: artifact.hash, version: metadata.version };
    } catch (err) {
      if (isHostError(err, 'PH_ERR_DB_UNAVAILABLE')) {
        this.o.log.warn({ plugin: name, err: describeError(err) }, `change of ${name} not published: database unavailable; retrying`);
        setTimeout(() => this.schedule(name), 1000).unref();
        throw err;
      }
      this.lastFailed.set(name, hash);
      const rec = recordError(err);
      this.o.log.error(
        { plugin: name, code: rec.code },
        `plugin ${name} changed on disk but cannot be loaded: ${rec.message}; the serving version stays`,
      );
      // The manager compiles from source in its lane and records the failure in this node's observed state.
      await this.o.manager.reconcile(name);
      return { kind: 'failed', code: rec.code, message: rec.message };
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.lanes.idle();
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
