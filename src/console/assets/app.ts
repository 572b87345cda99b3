// The operator console: plugins table, unregistered directories, detail view and actions.
// State is never kept here beyond the last answers: every event makes the page re-read the
// read API, the same level-triggered rule the nodes follow with their notifications.
import { type Action, type ClusterView, getJson, type PluginItem, RequestFailed, runAction } from './api.js';
import { DetailView } from './detail.js';
import { byId, el } from './dom.js';
import { Permissions } from './permissions.js';
import { type Connection, followEvents } from './stream.js';
import { PluginTable, UnregisteredTable } from './table.js';

const TOKEN_KEY = 'plugin-host.admin-token';

let listed: PluginItem[] = [];

const message = byId<HTMLElement>('message');
function say(text: string, kind: 'info' | 'ok' | 'error'): void {
  message.className = `message message-${kind}`;
  message.replaceChildren(...(kind === 'error' ? [el('strong', {}, 'Failed: ')] : []), text);
}

// The admin token lives in this tab's sessionStorage only: never in a cookie, never in the URL.
const tokenInput = byId<HTMLInputElement>('token');
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
tokenInput.addEventListener('input', () => {
  if (tokenInput.value === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
});
byId('token-form').addEventListener('submit', (ev) => ev.preventDefault());
new Permissions(tokenInput);
byId('token-forget').addEventListener('click', () => {
  tokenInput.value = '';
  sessionStorage.removeItem(TOKEN_KEY);
  say('Admin token forgotten.', 'info');
});

const PAST: Record<Action, string> = { enable: 'enabled', disable: 'disabled', reload: 'reloaded' };
const busy = new Set<string>();

async function act(name: string, action: Action): Promise<void> {
  const key = `${name}/${action}`;
  if (busy.has(key)) return;
  busy.add(key);
  say(`${action} ${name}…`, 'info');
  try {
    const r = await runAction(name, action, tokenInput.value.trim());
    const how = !r.changed ? ' (no change: it already was)' : r.settled ? `; this node: ${r.state}` : '; this node is still applying it';
    say(`${name} ${PAST[action]}${how}.`, 'ok');
  } catch (err) {
    say(`${action} ${name}: ${err instanceof RequestFailed ? err.message : String(err)}`, 'error');
  } finally {
    busy.delete(key);
    refresh();
  }
}

const table = new PluginTable(byId<HTMLTableElement>('plugins'), (name, action) => void act(name, action));
const unregistered = new UnregisteredTable(byId('unregistered'), byId<HTMLTableSectionElement>('unregistered-rows'));

// The detail view follows the URL's fragment (#plugin=NAME): links open it, Back closes it.
const detail = new DetailView(
  (name) => listed.find((p) => p.name === name),
  () => {
    if (location.hash.startsWith('#plugin=')) history.replaceState(null, '', location.pathname + location.search);
  },
  {
    get: () => tokenInput.value.trim(),
    set(token) {
      tokenInput.value = token;
      if (token === '') sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, token);
      feed.restart();
    },
  },
);
function followHash(): void {
  const m = /^#plugin=(.+)$/.exec(location.hash);
  if (m !== null) detail.show(decodeURIComponent(m[1] as string));
  else if (detail.open !== undefined) (byId('detail') as HTMLDialogElement).close();
}
window.addEventListener('hashchange', followHash);

let reading: Promise<void> | undefined;
let readAgain = false;
let detailDirty = false;

/** Re-reads the plugins and every node's state; calls made while a read runs are merged into one more read. */
function refresh(): void {
  if (reading !== undefined) {
    readAgain = true;
    return;
  }
  reading = read().finally(() => {
    reading = undefined;
    if (readAgain) {
      readAgain = false;
      refresh();
    }
  });
}

async function read(): Promise<void> {
  try {
    const [plugins, cluster] = await Promise.all([
      getJson<PluginItem[]>('/plugins'),
      getJson<ClusterView>('/cluster').catch(() => undefined),
    ]);
    listed = plugins;
    const registered = plugins.filter((p) => p.registered !== false);
    table.update(registered, { cluster });
    unregistered.update(plugins.filter((p) => p.registered === false));
    byId('count').textContent = `(${registered.length})`;
    byId('empty').hidden = registered.length > 0;
    byId('stale').hidden = !(plugins.some((p) => p.stale === true) || cluster?.stale === true);
    const updated = byId('updated');
    updated.replaceChildren('Updated ', el('time', { datetime: new Date().toISOString() }, new Date().toLocaleTimeString()));
    if (document.body.dataset.loaded !== 'true') {
      // the first complete table: `performance.getEntriesByName('console-loaded')` tells how long loading took
      performance.mark('console-loaded');
      document.body.dataset.loaded = 'true';
    }
    if (detailDirty) {
      detailDirty = false;
      detail.refresh();
    }
  } catch (err) {
    say(`reading the plugins: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }
}

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: 'Reconnecting…',
  live: 'Live',
  offline: 'Offline: retrying',
  locked: 'Not following changes: type the admin token',
};
const conn = byId('connection');
const feed = followEvents({
  token: () => tokenInput.value.trim(),
  resync() {
    detailDirty = true;
    refresh();
  },
  changed(plugins) {
    const open = detail.open;
    if (open !== undefined && (plugins.length === 0 || plugins.includes(open))) detailDirty = true;
    refresh();
  },
  connection(state) {
    conn.className = `connection connection-${state}`;
    conn.textContent = CONNECTION_TEXT[state];
    document.body.dataset.connection = state;
  },
});
// a new token (typed, pasted or forgotten) reopens the feed with it
let typed: ReturnType<typeof setTimeout> | undefined;
tokenInput.addEventListener('input', () => {
  clearTimeout(typed);
  typed = setTimeout(() => feed.restart(), 300);
});
byId('token-forget').addEventListener('click', () => feed.restart());
followHash();
refresh();
