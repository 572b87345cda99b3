// Small DOM helpers. Text is always inserted as text nodes (never as HTML), so names,
// messages and paths from the API cannot inject markup.

export type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e as T;
}

/** A `<time>`: the time alone when it is today, else date and time; the full date as a tooltip. */
export function timeEl(iso: string | null | undefined): Node {
  if (iso === null || iso === undefined) return document.createTextNode('');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return document.createTextNode(iso);
  const today = d.toDateString() === new Date().toDateString();
  return el('time', { datetime: iso, title: d.toLocaleString() }, today ? d.toLocaleTimeString() : d.toLocaleString());
}

/** A state or status as a badge: the word is always shown; the colour only repeats it. */
export function badge(kind: 'state' | 'status' | 'health', value: string): HTMLElement {
  return el('span', { class: `badge ${kind}-${value.replace(/[^a-z0-9-]/gi, '')}` }, value);
}

// `file:line:column` (or `file:line`) as the compiler writes it at the start of a message, or anywhere in it.
const LOCATION = /((?:[\w.@-]+\/)*[\w.@-]+\.(?:[cm]?[jt]sx?|json)):(\d+)(?::(\d+))?/;

export interface Located {
  /** `file:line:column`, when the message names one. */
  where: string | undefined;
  /** The message without a leading location. */
  text: string;
}

export function locate(message: string): Located {
  const m = LOCATION.exec(message);
  if (m === null) return { where: undefined, text: message };
  const where = m[0];
  const text = message.startsWith(`${where}: `) ? message.slice(where.length + 2) : message;
  return { where, text };
}

export interface ErrorLike {
  code: string | null;
  message: string;
  at: string | null;
}

/**
 * An error as code, location and message. `brief` keeps the first line (a table cell);
 * the detail view shows every line.
 */
export function errorView(e: ErrorLike, opts: { brief?: boolean; node?: string } = {}): HTMLElement {
  const { where, text } = locate(e.message);
  const lines = text.split('\n');
  const shown = opts.brief ? (lines[0] ?? '') : text;
  const more = opts.brief && lines.length > 1 ? ` (+${lines.length - 1} more)` : '';
  return el(
    'div',
    { class: 'error' },
    el('span', { class: 'error-code' }, e.code ?? 'error'),
    ' ',
    where === undefined ? null : el('code', { class: 'error-where' }, where),
    where === undefined ? null : ' ',
    el('span', { class: 'error-text' }, shown + more),
    el('span', { class: 'error-when' }, opts.node === undefined ? null : `on ${opts.node} `, timeEl(e.at)),
  );
}
