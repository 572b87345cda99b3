import type { PluginAdmin } from '../../admin/index.js';
import { liveWithinMs } from '../../config/index.js';
import type { Database, PluginRepository } from '../../db/index.js';
// the view module alone: the http folder's index would load Fastify's plugins into every CLI command
import { pluginView } from '../../http/plugin-view.js';
import type { VersionEntry } from '../../model/answers.js';
import type { IsolationMode, PluginStatus } from '../../model/index.js';
import type { Releases } from '../../releases/index.js';
import type { ConfigOp, Control, Listing, PluginChange } from './control.js';

/** The parts a local control acts with: the database, and the admin and release paths over it. */
export interface LocalParts {
  db: Database;
  repo: PluginRepository;
  admin: PluginAdmin;
  releases: Releases;
}

/** The control of the database itself: the admin path a server would take, run in this process. */
export class LocalControl implements Control {
  readonly where = 'database';

  constructor(private readonly p: LocalParts) {}

  async list(status: PluginStatus | undefined): Promise<Listing> {
    const rows = await this.p.repo.list(status === undefined ? {} : { status });
    const nodes = await this.p.repo.nodes.views(undefined, liveWithinMs());
    const answer = rows.map((r) => {
      const mine = nodes.filter((n) => n.pluginName === r.name);
      const { state: _s, serving: _v, last_error: _e, node_id: _n, ...v } = pluginView(r, undefined, mine, '');
      return v;
    });
    const plugins = rows.map((r) => {
      const mine = nodes.filter((n) => n.pluginName === r.name);
      const errors = [...new Set(mine.map((n) => n.lastErrorCode).filter((c): c is string => c !== null))];
      const serving = mine.filter((n) => n.state === 'serving').length;
      return {
        name: r.name,
        status: r.status,
        version: r.version,
        generation: r.generation,
        artifactHash: r.artifactHash,
        nodes: { serving, total: mine.length, errors },
      };
    });
    return { answer, plugins };
  }

  async setStatus(name: string, status: PluginStatus): Promise<PluginChange> {
    const { row, changed } = await this.p.admin.setStatus(name, status);
    return { answer: { name, status: row.status, changed }, name, status: row.status, changed };
  }

  async reload(name: string): Promise<PluginChange> {
    const { row, recompiled } = await this.p.admin.reload(name);
    const answer = { name, generation: row.generation, artifact_hash: row.artifactHash, version: row.version, recompiled };
    return { answer, name, generation: row.generation, artifactHash: row.artifactHash, version: row.version, recompiled };
  }

  async remove(name: string): Promise<PluginChange> {
    await this.p.admin.remove(name, 'cli');
    return { answer: { name, removed: true }, name };
  }

  async setIsolation(name: string, mode: IsolationMode | null): Promise<PluginChange> {
    const { row, changed } = await this.p.admin.setIsolation(name, mode);
    return { answer: { name, isolation: row.isolation, changed }, name, isolation: row.isolation, changed };
  }

  async register(dir: string, status: PluginStatus): Promise<PluginChange> {
    const row = await this.p.admin.register(dir, { status });
    const answer = { name: row.name, version: row.version, status: row.status, artifact_hash: row.artifactHash };
    return { answer, name: row.name, version: row.version, status: row.status, artifactHash: row.artifactHash };
  }

  async config(name: string, op: ConfigOp): Promise<Record<string, unknown>> {
    if (op.kind === 'get') return { ...(await this.p.admin.config.get(name)) };
    const opts = { by: 'cli' };
    const c =
      op.kind === 'put' ? await this.p.admin.config.put(name, op.values, opts) : await this.p.admin.config.patch(name, op.patch, opts);
    return { ...c.state, changed: c.changed };
  }

  async versions(name: string): Promise<{ answer: VersionEntry[]; pinnedHash: string | null | undefined }> {
    const answer = await this.p.releases.versions(name, liveWithinMs());
    return { answer, pinnedHash: (await this.p.repo.getByName(name))?.pinnedHash };
  }

  async rollback(name: string, ref: { version: string } | { hash: string }): Promise<PluginChange> {
    const row = await this.p.releases.rollback(name, ref, 'cli');
    return {
      answer: { name, pinned: row.pinnedVersion, pinned_hash: row.pinnedHash },
      name,
      pinned: row.pinnedVersion,
      pinnedHash: row.pinnedHash,
    };
  }

  close(): Promise<void> {
    return this.p.db.close();
  }
}
