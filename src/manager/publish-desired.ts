import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactStore } from '../artifacts/index.js';
import type { EndpointInput, PluginRepository, PluginRow, PluginWithEndpoints } from '../db/index.js';
import { describeError } from '../errors/index.js';
import { endpointKey, endpointRecord } from '../model/index.js';
import type { LoadedVersion } from '../runtime/index.js';
import type { Resolved } from './resolve.js';

/** The columns of a plugin row a node may write: what compiling the source yields, nothing an operator sets. */
type PublishedFields = Partial<Pick<PluginRow, 'artifactHash' | 'binaryPath' | 'version' | 'description' | 'author'>>;

export interface DesiredPublisherOptions {
  repo: PluginRepository;
  artifacts: ArtifactStore;
  log: FastifyBaseLogger;
}

/**
 * The node that compiled a version from source publishes it once it loaded
 * here: artifact bytes, hash, metadata and endpoints. Writing the row wakes
 * the other nodes, which find nothing to do if they already serve it.
 *
 * This is the one place a node writes desired state on its own account, and why: only a node that has a
 * plugin's source can turn it into an artifact, and every other node (and a node without the source) needs
 * that artifact named in the row. It writes nothing an operator decides: only the fields a compile yields
 * (`PublishedFields`: artifact hash and path, version, description, author) and the endpoint list the
 * version registered; status, path, isolation, pins and configuration are written by the admin path alone.
 */
export class DesiredPublisher {
  /** Plugin name -> the row id and hash this node last published successfully. */
  private readonly published = new Map<string, { id: string; hash: string }>();
  /** While held (the first round): endpoint lists kept to be written together, by plugin name. */
  private held: Map<string, { id: string; hash: string; endpoints: EndpointInput[] }> | undefined;

  constructor(private readonly o: DesiredPublisherOptions) {}

  /**
   * Keeps the endpoint lists that are all a publication writes (the artifact is already the row's) until
   * `release()`: the first round of a node that just registered its plugins replaces each one's declared
   * endpoints with the routes it really registered, in one transaction instead of one per plugin.
   */
  hold(): void {
    this.held ??= new Map();
  }

  async release(): Promise<void> {
    const batch = this.held;
    this.held = undefined;
    if (batch === undefined || batch.size === 0) return;
    try {
      await this.o.repo.replaceEndpointsOf(new Map([...batch.values()].map((b) => [b.id, b.endpoints])));
      for (const [name, b] of batch) this.published.set(name, { id: b.id, hash: b.hash });
    } catch (err) {
      // not marked published: the next reconcile of each writes its own
      this.o.log.warn({ err: describeError(err) }, 'could not publish the endpoints of the first round to the database');
    }
  }

  async publish(row: PluginRow, loaded: LoadedVersion, r: Resolved): Promise<void> {
    // Once per row and hash: every write here notifies every node, so a node that re-published on each
    // no-op reconcile would wake its peers forever (two nodes whose sources differ would overwrite each
    // other's hash in a loop). A failed publish is not recorded, so the next reconcile repairs it.
    if (this.isPublished(row, r.hash)) return;
    try {
      const m = loaded.metadata;
      // Endpoints first: whoever sees the row's new version or hash finds its endpoints already there.
      if (r.from !== 'artifact') {
        const want = endpointsOf(loaded);
        const have = (row as Partial<PluginWithEndpoints>).endpoints;
        // a list kept earlier in the round is outdated by this one, kept or written below
        this.held?.delete(row.name);
        if (have === undefined || !sameEndpoints(have, want)) {
          if (this.held !== undefined && r.artifact !== undefined && !rowChanges(row, r.hash, m)) {
            // nothing else to write for this plugin: its endpoints go with the others' when the round ends
            this.held.set(row.name, { id: row.id, hash: r.hash, endpoints: want });
            return;
          }
          await this.o.repo.replaceEndpoints(row.id, want);
        }
      }
      if (r.artifact !== undefined) {
        const patch: PublishedFields = {};
        if (row.artifactHash !== r.hash) patch.artifactHash = r.hash;
        // binary_path is where the publishing node keeps the file: written with a new hash only, or two
        // nodes with different ARTIFACTS_DIR would rewrite it after each other's notification without end
        if (row.artifactHash !== r.hash && row.binaryPath !== r.artifact.path) patch.binaryPath = r.artifact.path;
        if (row.version !== m.version) patch.version = m.version;
        if (row.description !== m.description) patch.description = m.description;
        if (row.author !== m.author) patch.author = m.author;
        if (row.artifactHash !== r.hash) {
          // the artifact, its history and the row in one statement: the nodes it wakes find all three
          await this.o.artifacts.publish(
            {
              hash: r.hash,
              pluginName: row.name,
              version: m.version,
              format: r.artifact.format,
              bundle: r.artifact.bundle,
              history: { action: 'source', metadata: m },
            },
            { name: row.name, patch },
          );
        } else if (Object.keys(patch).length > 0) await this.o.repo.update(row.name, patch);
      }
      this.published.set(row.name, { id: row.id, hash: r.hash });
    } catch (err) {
      this.o.log.warn({ plugin: row.name, err: describeError(err) }, 'could not publish plugin state to the database');
    }
  }

  /** Whether this node published `hash` for this very row (nothing left to write for it). */
  isPublished(row: PluginRow, hash: string): boolean {
    const last = this.published.get(row.name);
    return row.artifactHash !== null && last?.id === row.id && last.hash === hash;
  }

  get remembered(): number {
    return this.published.size;
  }

  /** The plugin's row was deleted: nothing of it to remember. */
  forget(name: string): void {
    this.published.delete(name);
    this.held?.delete(name);
  }
}

/** Whether publishing `hash` with metadata `m` writes anything to the row itself. */
function rowChanges(row: PluginRow, hash: string, m: LoadedVersion['metadata']): boolean {
  return row.artifactHash !== hash || row.version !== m.version || row.description !== m.description || row.author !== m.author;
}

function sameEndpoints(have: ReadonlyArray<EndpointInput>, want: ReadonlyArray<EndpointInput>): boolean {
  const a = new Set(have.map(endpointKey));
  return a.size === want.length && want.every((e) => a.has(endpointKey(e)));
}

/** The declared endpoints plus the routes the plugin really registered (Fastify's automatic HEAD twins aside). */
function endpointsOf(p: LoadedVersion): EndpointInput[] {
  const declared = p.metadata.endpoints ?? [];
  const handlerOf = new Map(declared.map((e) => [`${e.method} ${e.path}`, e]));
  const out = new Map<string, EndpointInput>();
  for (const e of declared) out.set(`${e.method} ${e.path}`, endpointRecord(e));
  for (const r of p.routes) {
    const key = `${r.method} ${r.url}`;
    if (r.method === 'HEAD' && !handlerOf.has(key)) continue; // Fastify's automatic HEAD twins
    if (!out.has(key)) out.set(key, endpointRecord({ method: r.method, path: r.url }));
  }
  return [...out.values()];
}
