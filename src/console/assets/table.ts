import type { Action, ClusterView, NodePluginState, PluginItem, RecordedError } from './api.js';
import { badge, el, errorView } from './dom.js';

/** What a row is rendered from besides its plugin: every node's view, and which node this page talks to. */
export interface RowContext {
  cluster: ClusterView | undefined;
}

/**
 * One column of the plugins table. `data` picks what the cell shows; the cell is rebuilt only
 * when that changes, so a refresh does not disturb what the person is reading or where the
 * keyboard focus is. `optional` columns appear only when some plugin has data for them.
 */
interface Column<T> {
  id: string;
  header: string;
  optional?: boolean;
  data(p: PluginItem, ctx: RowContext): T;
  render(d: T, p: PluginItem): Node;
}

function column<T>(c: Column<T>): Column<unknown> {
  return c as Column<unknown>;
}

/** The link that opens a plugin's detail view. */
export function detailHref(name: string): string {
  return `#plugin=${encodeURIComponent(name)}`;
}

interface NodeCell {
  node: string;
  self: boolean;
  state: string;
  version: string | null;
  failed: string | null;
  error: string | null;
}

/** Every node's view of `p`; this node's from `GET /plugins` when the cluster view could not be read. */
function nodesOf(p: PluginItem, ctx: RowContext): NodeCell[] {
  const entries = ctx.cluster?.plugins[p.name];
  const self = ctx.cluster?.node_id ?? (typeof p.node_id === 'string' ? p.node_id : '');
  if (entries === undefined || entries.length === 0) {
    return [
      {
        node: self,
        self: true,
        state: p.state,
        version: p.serving?.version ?? null,
        failed: p.last_error?.version ?? null,
        error: p.last_error?.code ?? null,
      },
    ];
  }
  return entries.map((n: NodePluginState) => ({
    node: n.node_id,
    self: n.node_id === self,
    state: n.state,
    version: n.serving_version,
    failed: n.failed_version,
    error: n.last_error?.code ?? null,
  }));
}

/** The newest error any node reports for `p`, with the node that reports it (undefined for this node). */
function lastErrorOf(p: PluginItem, ctx: RowContext): { e: RecordedError; node: string | undefined } | null {
  let best: { e: RecordedError; node: string | undefined } | null = p.last_error ? { e: p.last_error, node: undefined } : null;
  const self = ctx.cluster?.node_id;
  for (const n of ctx.cluster?.plugins[p.name] ?? []) {
    if (n.last_error === null || n.node_id === self) continue;
    if (best === null || (n.last_error.at ?? '') > (best.e.at ?? '')) best = { e: n.last_error, node: n.node_id };
  }
  return best;
}

/** A field later API versions add to `GET /plugins` (isolation mode, configuration revision, rollout), shown as text. */
function fieldText(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k of ['state', 'status', 'mode', 'revision', 'version'])
      if (typeof o[k] === 'string' || typeof o[k] === 'number') return String(o[k]);
  }
  return JSON.stringify(v);
}

function optionalField(field: string, header: string): Column<unknown> {
  return column<string | null>({
    id: field,
    header,
    optional: true,
    data: (p) => fieldText(p[field]),
    render: (d) => document.createTextNode(d ?? '—'),
  });
}

const ACTIONS: { action: Action; label: string }[] = [
  { action: 'enable', label: 'Enable' },
  { action: 'disable', label: 'Disable' },
  { action: 'reload', label: 'Reload' },
];

export const COLUMNS: Column<unknown>[] = [
  column<{ name: string; description: string }>({
    id: 'name',
    header: 'Plugin',
    data: (p) => ({ name: p.name, description: p.description ?? '' }),
    render: (d) =>
      el(
        'span',
        {},
        el('a', { href: detailHref(d.name), class: 'plugin-name' }, d.name),
        d.description === '' ? null : el('span', { class: 'description' }, d.description),
      ),
  }),
  column<string>({
    id: 'status',
    header: 'Desired',
    data: (p) => p.status ?? 'unregistered',
    render: (d) => badge('status', d),
  }),
  column<string>({
    id: 'version',
    header: 'Version',
    data: (p) => p.version ?? '',
    render: (d) => document.createTextNode(d),
  }),
  column<NodeCell[]>({
    id: 'nodes',
    header: 'Nodes',
    data: nodesOf,
    render: (d) =>
      el(
        'ul',
        { class: 'nodes' },
        ...d.map((n) =>
          el(
            'li',
            {},
            // spaces as text, not margins: copied or read aloud, the parts stay apart
            badge('state', n.state),
            n.version === null ? null : ' ',
            n.version === null ? null : el('span', { class: 'node-version' }, n.version),
            n.failed !== null && n.failed !== n.version ? ' ' : null,
            n.failed !== null && n.failed !== n.version ? el('span', { class: 'node-failed' }, `${n.failed} failed`) : null,
            ' ',
            el('span', { class: 'node-id' }, n.self ? 'this node' : n.node),
          ),
        ),
      ),
  }),
  column<string | null>({
    id: 'isolation',
    header: 'Isolation',
    optional: true,
    // the mode the row asks for, else the one in effect here (the host's default), marked as such
    data: (p) => {
      const wanted = fieldText(p.isolation);
      if (wanted !== null) return wanted;
      const here = p.serving?.isolation;
      return typeof here === 'string' ? `${here} (default)` : null;
    },
    render: (d) => document.createTextNode(d ?? '—'),
  }),
  optionalField('config_revision', 'Config'),
  optionalField('rollout', 'Rollout'),
  column<{ e: RecordedError; node: string | undefined } | null>({
    id: 'error',
    header: 'Last error',
    data: lastErrorOf,
    render: (d) =>
      d === null ? el('span', { class: 'none' }, 'none') : errorView(d.e, { brief: true, ...(d.node ? { node: d.node } : {}) }),
  }),
];

interface Row {
  tr: HTMLTableRowElement;
  cells: Map<string, { td: HTMLTableCellElement; sig: string }>;
}

export type ActionHandler = (name: string, action: Action) => void;

/** The registered plugins, one `<tr>` each, kept in name order and updated in place. */
export class PluginTable {
  private readonly rows = new Map<string, Row>();
  private shown: Column<unknown>[] = [];

  constructor(
    private readonly table: HTMLTableElement,
    onAction: ActionHandler,
  ) {
    // One listener for every button: rows come and go, the listener stays.
    table.addEventListener('click', (ev) => {
      const b = (ev.target as Element).closest('button[data-action]');
      if (!(b instanceof HTMLButtonElement)) return;
      onAction(b.dataset.plugin as string, b.dataset.action as Action);
    });
  }

  update(items: PluginItem[], ctx: RowContext): void {
    const cols = COLUMNS.filter((c) => !c.optional || items.some((p) => c.data(p, ctx) !== null));
    if (cols.map((c) => c.id).join() !== this.shown.map((c) => c.id).join()) this.setColumns(cols);
    const tbody = this.table.tBodies[0] as HTMLTableSectionElement;
    const names = new Set(items.map((p) => p.name));
    for (const [name, row] of this.rows) {
      if (!names.has(name)) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    const sorted = [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    sorted.forEach((p, i) => {
      const row = this.rows.get(p.name) ?? this.newRow(p.name);
      this.fill(row, p, ctx);
      if (tbody.rows[i] !== row.tr) tbody.insertBefore(row.tr, tbody.rows[i] ?? null);
    });
  }

  private setColumns(cols: Column<unknown>[]): void {
    this.shown = cols;
    const head = this.table.tHead?.rows[0];
    if (head !== undefined) {
      head.replaceChildren(...cols.map((c) => el('th', { scope: 'col' }, c.header)), el('th', { scope: 'col' }, 'Actions'));
    }
    // Cells follow the columns: rebuild rows (their action buttons are kept).
    for (const row of this.rows.values()) {
      const actions = row.tr.lastElementChild as Element;
      row.tr.replaceChildren(actions);
      row.cells.clear();
    }
  }

  private newRow(name: string): Row {
    const tr = el('tr', { 'data-plugin': name });
    const actions = el(
      'td',
      { class: 'actions', 'data-label': 'Actions' },
      ...ACTIONS.map((a) =>
        el(
          'button',
          { type: 'button', 'data-action': a.action, 'data-plugin': name },
          a.label,
          // the visible word stays short; the accessible name says which plugin
          el('span', { class: 'visually-hidden' }, ` ${name}`),
        ),
      ),
    );
    tr.append(actions);
    const row: Row = { tr, cells: new Map() };
    this.rows.set(name, row);
    return row;
  }

  private fill(row: Row, p: PluginItem, ctx: RowContext): void {
    const actions = row.tr.lastElementChild as HTMLTableCellElement;
    for (const c of this.shown) {
      const d = c.data(p, ctx);
      const sig = JSON.stringify(d) ?? '';
      let cell = row.cells.get(c.id);
      if (cell === undefined) {
        const td = el(c.id === 'name' ? 'th' : 'td', { class: `col-${c.id}`, 'data-label': c.header }) as HTMLTableCellElement;
        if (c.id === 'name') td.setAttribute('scope', 'row');
        row.tr.insertBefore(td, actions);
        cell = { td, sig: '\u0000' };
        row.cells.set(c.id, cell);
      }
      if (cell.sig !== sig) {
        cell.td.replaceChildren(c.render(d, p));
        cell.sig = sig;
      }
    }
    row.tr.className = `state-row-${p.state}`;
  }
}

/** Directories of the plugins directory that could not be registered, with the reason. */
export class UnregisteredTable {
  private sig = '';

  constructor(
    private readonly section: HTMLElement,
    private readonly tbody: HTMLTableSectionElement,
  ) {}

  update(items: PluginItem[]): void {
    const sorted = [...items].sort((a, b) => (a.name < b.name ? -1 : 1));
    const sig = JSON.stringify(sorted.map((p) => [p.name, p.source_path, p.last_error]));
    this.section.hidden = sorted.length === 0;
    if (sig === this.sig) return;
    this.sig = sig;
    this.tbody.replaceChildren(
      ...sorted.map((p) =>
        el(
          'tr',
          { 'data-plugin': p.name },
          el('th', { scope: 'row', 'data-label': 'Directory' }, el('a', { href: detailHref(p.name), class: 'plugin-name' }, p.name)),
          el('td', { 'data-label': 'Path' }, el('code', {}, p.source_path ?? '')),
          el('td', { 'data-label': 'Error' }, p.last_error === null ? 'none' : errorView(p.last_error, { brief: true })),
        ),
      ),
    );
  }
}
