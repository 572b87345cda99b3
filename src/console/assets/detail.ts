import {
  getJson,
  type HistoryEntry,
  PLUGIN_NAME,
  type PluginDetail,
  type PluginItem,
  RequestFailed,
  type RolloutInfo,
  type VersionEntry,
} from './api.js';
import { ConfigEditor } from './config-editor.js';
import { badge, byId, el, errorView, timeEl } from './dom.js';
import { renderAudit } from './permissions.js';
import { VersionsSection } from './versions.js';

/**
 * The detail view of one plugin, in a modal `<dialog>` (focus stays inside, Escape closes it):
 * summary, every node's view, versions, routes, health check on this node and the errors this
 * node has seen. Its sections are refilled in place, so a refresh never moves the focus.
 */
export class DetailView {
  private readonly dialog = byId<HTMLDialogElement>('detail');
  private current: string | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private readonly config: ConfigEditor;
  private readonly versions: VersionsSection;
  private readonly token: () => string;

  constructor(
    /** The last `GET /plugins` answer: unregistered directories are shown from it. */
    private readonly listed: (name: string) => PluginItem | undefined,
    onClose: () => void,
    token: { get(): string; set(token: string): void },
  ) {
    this.config = new ConfigEditor(token);
    this.token = () => token.get();
    this.versions = new VersionsSection(
      () => token.get(),
      () => this.refresh(),
    );
    byId('detail-close').addEventListener('click', () => this.dialog.close());
    byId('detail-refresh').addEventListener('click', () => this.refresh());
    this.dialog.addEventListener('close', () => {
      this.current = undefined;
      onClose();
    });
  }

  get open(): string | undefined {
    return this.current;
  }

  show(name: string): void {
    if (this.current !== name) {
      this.current = name;
      byId('detail-title').textContent = name;
      for (const id of ['detail-summary', 'detail-nodes', 'detail-routes', 'detail-health', 'detail-errors']) {
        byId(id).replaceChildren(el('p', { class: 'loading' }, 'Loading…'));
      }
      this.versions.open(name);
      this.config.open(name, this.listed(name)?.registered !== false);
    }
    if (!this.dialog.open) this.dialog.showModal();
    this.refresh();
  }

  /** Re-reads the open plugin; calls made while a read runs are merged into one more read. */
  refresh(): void {
    if (this.current === undefined) return;
    if (this.loading !== undefined) {
      this.again = true;
      return;
    }
    this.loading = this.load(this.current).finally(() => {
      this.loading = undefined;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
  }

  private async load(name: string): Promise<void> {
    const valid = PLUGIN_NAME.test(name);
    const reading = valid ? getJson<PluginDetail>(`/plugins/${encodeURIComponent(name)}`).catch((err: unknown) => err as Error) : undefined;
    const [detail, errors, versions] = await Promise.all([
      reading,
      valid
        ? getJson<{ errors: HistoryEntry[] }>(`/plugins/${encodeURIComponent(name)}/errors`).then(
            (r) => r.errors,
            () => [] as HistoryEntry[],
          )
        : ([] as HistoryEntry[]),
      // read once the plugin is known to be registered: an unregistered directory has no versions (404)
      reading?.then((d) =>
        d instanceof Error || d.registered === false
          ? ([] as VersionEntry[])
          : getJson<VersionEntry[]>(`/plugins/${encodeURIComponent(name)}/versions`).catch((err: unknown) => err as Error),
      ) ?? ([] as VersionEntry[]),
    ]);
    if (this.current !== name) return; // another plugin was opened meanwhile
    if (valid) void renderAudit(byId('detail-audit'), name, this.token());
    const p: PluginDetail | undefined = detail instanceof Error || detail === undefined ? this.listed(name) : detail;
    if (p === undefined) {
      const why = detail instanceof RequestFailed && detail.status === 404 ? `${detail.detail} (any more).` : String(detail);
      byId('detail-summary').replaceChildren(el('p', { class: 'notice' }, why));
      for (const id of ['detail-nodes', 'detail-routes', 'detail-health']) byId(id).replaceChildren();
      this.versions.update({ name, pinnedHash: null, rollout: null, versions: [] });
      this.renderErrors(errors);
      return;
    }
    this.renderSummary(p);
    this.renderNodes(p);
    this.versions.update({
      name,
      pinnedHash: typeof p.pinned_hash === 'string' ? p.pinned_hash : null,
      rollout: p.rollout !== null && typeof p.rollout === 'object' ? (p.rollout as RolloutInfo) : null,
      versions: p.registered === false ? [] : versions,
    });
    this.renderRoutes(p);
    this.renderHealth(p);
    this.renderErrors(errors);
  }

  private renderSummary(p: PluginDetail): void {
    const rows: [string, Node | string | null][] = [
      ['Desired status', badge('status', p.status ?? 'unregistered')],
      ['State on this node', badge('state', p.state)],
      ['Registered version', p.version ?? null],
      ['Serving here', p.serving ? `${p.serving.version} (${p.serving.hash.slice(0, 12)}, from ${p.serving.from ?? '?'})` : 'nothing'],
      ['Loaded at', p.serving ? timeEl(p.serving.loaded_at) : null],
      ['Generation', p.generation === undefined ? null : String(p.generation)],
      [
        'Configuration',
        typeof p.config_revision === 'number'
          ? `revision ${p.config_revision}${p.serving && p.serving.config_revision !== p.config_revision ? ` (this node runs revision ${p.serving.config_revision})` : ''}`
          : null,
      ],
      ['Artifact', p.artifact_hash ? el('code', {}, p.artifact_hash.slice(0, 16)) : null],
      ['Type', p.type ?? null],
      ['Author', p.author ?? null],
      ['Description', p.description ?? null],
      ['Source', p.source_path ? el('code', {}, p.source_path) : null],
      ['Last error here', p.last_error ? errorView(p.last_error) : null],
      ['Pinned to', typeof p.pinned === 'string' ? p.pinned : null],
      ['Rollout', rolloutText(p.rollout)],
    ];
    byId('detail-summary').replaceChildren(
      el('dl', {}, ...rows.filter(([, v]) => v !== null && v !== '').flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    );
  }

  private renderNodes(p: PluginDetail): void {
    const nodes = p.nodes ?? [];
    if (nodes.length === 0) {
      byId('detail-nodes').replaceChildren(el('p', {}, p.registered ? 'No live node has recorded a state yet.' : 'Not registered.'));
      return;
    }
    byId('detail-nodes').replaceChildren(
      el(
        'table',
        { class: 'compact' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['Node', 'State', 'Serving', 'Failed version', 'Last error', 'Updated'].map((h) => el('th', { scope: 'col' }, h)),
          ),
        ),
        el(
          'tbody',
          {},
          ...nodes.map((n) =>
            el(
              'tr',
              {},
              el(
                'th',
                { scope: 'row', 'data-label': 'Node' },
                n.node_id,
                n.node_id === p.node_id ? el('span', { class: 'node-id' }, ' (this node)') : null,
              ),
              el('td', { 'data-label': 'State' }, badge('state', n.state)),
              el('td', { 'data-label': 'Serving' }, n.serving_version ?? '—'),
              el('td', { 'data-label': 'Failed version' }, n.failed_version ?? '—'),
              el('td', { 'data-label': 'Last error' }, n.last_error ? errorView(n.last_error) : 'none'),
              el('td', { 'data-label': 'Updated' }, timeEl(n.updated_at)),
            ),
          ),
        ),
      ),
    );
  }

  private renderRoutes(p: PluginDetail): void {
    byId('detail-routes').replaceChildren(
      p.endpoints.length === 0
        ? el('p', {}, 'No routes registered.')
        : el('ul', { class: 'routes' }, ...p.endpoints.map((e) => el('li', {}, el('code', {}, `${e.method} ${e.path}`)))),
    );
  }

  private renderHealth(p: PluginDetail): void {
    const h = p.health;
    if (h === undefined || h === null) {
      byId('detail-health').replaceChildren(el('p', {}, 'Not serving on this node: no health check to run.'));
      return;
    }
    const detail = h.detail === null || h.detail === undefined ? '' : typeof h.detail === 'string' ? h.detail : JSON.stringify(h.detail);
    byId('detail-health').replaceChildren(
      el(
        'p',
        {},
        badge('health', h.ok ? 'ok' : 'failing'),
        ` version ${h.version}, checked `,
        timeEl(h.checked_at),
        detail === '' ? null : el('span', { class: 'health-detail' }, `: ${detail}`),
      ),
    );
  }

  private renderErrors(errors: HistoryEntry[]): void {
    byId('detail-errors').replaceChildren(
      errors.length === 0
        ? el('p', {}, 'None since this node started.')
        : el(
            'ol',
            { class: 'history' },
            ...errors.map((e) =>
              el(
                'li',
                {},
                errorView(e),
                el(
                  'span',
                  { class: 'history-meta' },
                  e.version ? `version ${e.version}` : null,
                  e.count > 1 ? ` · ${e.count} times, last ` : null,
                  e.count > 1 ? timeEl(e.last_at) : null,
                ),
              ),
            ),
          ),
    );
  }
}

/** A staged rollout in one line: candidate, state, where it goes, and why it ended (absent: none). */
function rolloutText(v: unknown): string | null {
  if (v === null || typeof v !== 'object') return null;
  const r = v as { candidate_version?: string; state?: string; nodes?: string[] | null; percent?: number | null; reason?: string | null };
  const where = r.nodes ? ` on ${r.nodes.join(', ')}` : r.percent != null ? ` on ${r.percent}% of the nodes` : '';
  return `${r.candidate_version ?? '?'} ${r.state ?? '?'}${where}${r.reason ? `: ${r.reason}` : ''}`;
}
