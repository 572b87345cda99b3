import { describeError, ERROR_CODES, type ErrorCode, HostError } from '../../errors/index.js';
import type { PluginDetail, PluginItem, VersionEntry } from '../../model/answers.js';
import type { IsolationMode, PluginStatus } from '../../model/index.js';
import type { ConfigOp, Control, Listing, PluginChange } from './control.js';

type Answer = Record<string, unknown>;

/** The control of a running server: its admin API, authenticated with the admin token. */
export class HttpControl implements Control {
  readonly where = 'server';

  constructor(
    /** The server's base URL, and its process when it was found through the embedded database's lock. */
    private readonly server: { url: string; pid?: number | undefined },
    private readonly token: string | undefined,
  ) {}

  async list(status: PluginStatus | undefined): Promise<Listing> {
    const rows = (await this.call('GET', `/plugins${status ? `?status=${status}` : ''}`)) as unknown as PluginItem[];
    return {
      answer: rows,
      plugins: rows.map((r) => ({
        name: r.name,
        status: r.status ?? undefined,
        version: r.version,
        generation: r.generation,
        artifactHash: r.artifact_hash,
        state: r.state,
        lastErrorCode: r.last_error?.code ?? undefined,
      })),
    };
  }

  async setStatus(name: string, status: PluginStatus): Promise<PluginChange> {
    return changeOf(name, await this.call('POST', `${path(name)}/${status === 'active' ? 'enable' : 'disable'}`));
  }

  async reload(name: string): Promise<PluginChange> {
    return changeOf(name, await this.call('POST', `${path(name)}/reload`));
  }

  async remove(name: string): Promise<PluginChange> {
    return changeOf(name, await this.call('DELETE', path(name)));
  }

  async setIsolation(name: string, mode: IsolationMode | null): Promise<PluginChange> {
    return changeOf(name, await this.call('POST', `${path(name)}/isolation`, { mode }));
  }

  async register(dir: string, status: PluginStatus): Promise<PluginChange> {
    const a = await this.call('POST', '/plugins', { path: dir, status });
    return changeOf(String(a.name), a);
  }

  async config(name: string, op: ConfigOp): Promise<Answer> {
    const url = `${path(name)}/config`;
    if (op.kind === 'get') return this.call('GET', url);
    return op.kind === 'put' ? this.call('PUT', url, op.values) : this.call('PATCH', url, op.patch);
  }

  async versions(name: string): Promise<{ answer: VersionEntry[]; pinnedHash: string | null | undefined }> {
    const answer = (await this.call('GET', `${path(name)}/versions`)) as unknown as VersionEntry[];
    const plugin = (await this.call('GET', path(name))) as PluginDetail;
    const pinnedHash = plugin.pinned_hash as string | null | undefined;
    return { answer, pinnedHash };
  }

  async rollback(name: string, ref: { version: string } | { hash: string }): Promise<PluginChange> {
    return changeOf(name, await this.call('POST', `${path(name)}/rollback`, ref));
  }

  async close(): Promise<void> {}

  /** Calls the server's API with a JSON body (or none). */
  private call(method: string, url: string, body?: unknown): Promise<Answer> {
    return this.send(method, url, body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) }).then(
      (r) => r.answer,
    );
  }

  /**
   * Calls the server's API with a body of any type (an uploaded archive); a problem answer becomes a
   * HostError carrying its code. Returns the answer and its status.
   */
  async send(
    method: string,
    url: string,
    body?: { type: string; data: string | Buffer },
    timeoutMs = 120_000,
  ): Promise<{ status: number; answer: Answer }> {
    const { url: base, pid } = this.server;
    const who = pid === undefined ? `server ${base}` : `server ${base} (pid ${pid})`;
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = body.type;
    let res: Response;
    try {
      res = await fetch(`${base}${url}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: body.data }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new HostError('PH_ERR_SERVER_UNREACHABLE', `${who} did not answer: ${describeError(err)}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new HostError('PH_ERR_SERVER_UNREACHABLE', `server ${base} answered ${res.status} without JSON`);
    }
    if (!res.ok) {
      const p = json as { code?: string; detail?: string };
      const code: ErrorCode = typeof p.code === 'string' && p.code in ERROR_CODES ? (p.code as ErrorCode) : 'PH_ERR_INTERNAL';
      let detail = p.detail ?? `HTTP ${res.status}`;
      if (code === 'PH_ERR_UNAUTHORIZED' && this.token === undefined && pid !== undefined) {
        detail += ` (the embedded database is held by the server at ${base}, pid ${pid}: set ADMIN_TOKEN or --token to its admin token)`;
      }
      throw new HostError(code, detail, { details: { status: res.status } });
    }
    return { status: res.status, answer: json as Answer };
  }
}

function path(name: string): string {
  return `/plugins/${encodeURIComponent(name)}`;
}

/** A server's answer about one plugin (its API's plugin state) as a change. */
function changeOf(name: string, a: Answer): PluginChange {
  return {
    answer: a,
    name,
    status: a.status as string | undefined,
    version: a.version as string | undefined,
    generation: a.generation as number | undefined,
    artifactHash: a.artifact_hash as string | null | undefined,
    isolation: a.isolation as string | null | undefined,
    pinned: a.pinned as string | null | undefined,
    pinnedHash: a.pinned_hash as string | null | undefined,
    state: a.state === undefined ? undefined : String(a.state),
    lastError: a.last_error as PluginChange['lastError'],
  };
}
