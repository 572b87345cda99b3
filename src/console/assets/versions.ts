import { postAdmin, RequestFailed, type RolloutInfo, type VersionEntry } from './api.js';
import { byId, el, timeEl } from './dom.js';

/** What the section is rendered from: the plugin's pin and rollout, and its versions (an Error: they could not be read). */
export interface VersionsInput {
  name: string;
  pinnedHash: string | null;
  rollout: RolloutInfo | null;
  versions: VersionEntry[] | Error;
}

/**
 * The versions section of the detail view: every stored version, newest first, with who
 * published it, how, and the nodes serving it; a Rollback button per version, and Promote and
 * Abort while a rollout is in its canary stage. Each goes through the admin API with the
 * page's token; the outcome (or the refusal's message) stays shown until the next action.
 * The table is rebuilt only when what it shows changes, and a focused button keeps the focus.
 */
export class VersionsSection {
  private readonly box = byId('detail-versions');
  private readonly rollout = byId('versions-rollout');
  private readonly table = byId('versions-table');
  private readonly status = byId('versions-status');
  private name: string | undefined;
  private sig = '';
  private busy = false;

  constructor(
    private readonly token: () => string,
    /** After an action: read the plugin again (the event stream would too, a moment later). */
    private readonly changed: () => void,
  ) {}

  /** Another plugin opened: forget the last outcome and show "Loading…". */
  open(name: string): void {
    this.name = name;
    this.sig = '';
    this.note('', 'info');
    this.rollout.replaceChildren();
    this.table.replaceChildren(el('p', { class: 'loading' }, 'Loading…'));
  }

  update(d: VersionsInput): void {
    if (d.name !== this.name) return;
    const sig = JSON.stringify([d.pinnedHash, d.rollout, d.versions instanceof Error ? d.versions.message : d.versions]);
    if (sig === this.sig) return;
    this.sig = sig;
    // a rebuilt button keeps the keyboard focus it had (found again by its accessible name)
    const focused = document.activeElement;
    const label = focused instanceof HTMLButtonElement && this.box.contains(focused) ? focused.getAttribute('aria-label') : null;
    this.render(d);
    const now = document.activeElement;
    if (label === null || (now !== null && now !== document.body && !(now instanceof HTMLDialogElement))) return;
    for (const b of this.box.querySelectorAll('button')) if (b.getAttribute('aria-label') === label) b.focus();
  }

  private render(d: VersionsInput): void {
    this.renderRollout(d);
    if (d.versions instanceof Error) {
      this.table.replaceChildren(el('p', { class: 'notice' }, `The versions could not be read: ${d.versions.message}`));
      return;
    }
    if (d.versions.length === 0) {
      this.table.replaceChildren(el('p', {}, 'No stored version.'));
      return;
    }
    const candidate = d.rollout?.state === 'canary' ? d.rollout.candidate_hash : undefined;
    this.table.replaceChildren(
      el(
        'table',
        { class: 'compact versions' },
        el(
          'thead',
          {},
          el('tr', {}, ...['Version', 'Hash', 'Published', 'Serving on', 'Actions'].map((h) => el('th', { scope: 'col' }, h))),
        ),
        el(
          'tbody',
          {},
          ...d.versions.map((v) =>
            el(
              'tr',
              { 'data-version': v.version, 'data-hash': v.hash },
              el(
                'th',
                { scope: 'row', 'data-label': 'Version' },
                v.version,
                v.hash === d.pinnedHash ? ' ' : null,
                v.hash === d.pinnedHash ? el('span', { class: 'badge mark-pinned' }, 'pinned') : null,
                v.hash === candidate ? ' ' : null,
                v.hash === candidate ? el('span', { class: 'badge mark-candidate' }, 'candidate') : null,
              ),
              el('td', { 'data-label': 'Hash' }, el('code', { title: `SHA-256 ${v.sha256}` }, v.hash.slice(0, 12))),
              el('td', { 'data-label': 'Published' }, timeEl(v.created_at), ` by ${v.published_by} (${v.action})`),
              el('td', { 'data-label': 'Serving on' }, v.nodes.length === 0 ? '—' : v.nodes.join(', ')),
              el(
                'td',
                { class: 'actions', 'data-label': 'Actions' },
                this.button('Rollback', `Rollback to ${v.version}`, () => this.rollback(v)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  private renderRollout(d: VersionsInput): void {
    const r = d.rollout;
    if (r?.state !== 'canary') {
      this.rollout.replaceChildren();
      return;
    }
    const v = r.candidate_version ?? '?';
    this.rollout.replaceChildren(
      el(
        'div',
        { class: 'config-actions' },
        el('span', {}, `Rollout of ${v} in its canary stage:`),
        this.button('Promote', `Promote ${v} to every node`, () => this.act('rollout/promote', `promote ${v}`, `${v} promoted`)),
        this.button('Abort', `Abort the rollout of ${v}`, () =>
          this.act('rollout/abort', `abort the rollout of ${v}`, `rollout of ${v} aborted`),
        ),
      ),
    );
  }

  private button(text: string, label: string, run: () => Promise<void>): HTMLButtonElement {
    const b = el('button', { type: 'button', 'aria-label': label }, text);
    b.addEventListener('click', () => void run());
    return b;
  }

  private rollback(v: VersionEntry): Promise<void> {
    return this.act('rollback', `rollback to ${v.version}`, `pinned to ${v.version}`, { hash: v.hash });
  }

  private async act(path: string, what: string, done: string, body?: unknown): Promise<void> {
    const name = this.name;
    if (name === undefined || this.busy) return;
    this.busy = true;
    this.note(`${what}…`, 'info');
    try {
      const r = await postAdmin(name, path, this.token(), body);
      const here = r.settled ? `; this node: ${r.state}` : '; this node is still applying it';
      if (this.name === name) this.note(`${name} ${done}${here}.`, 'ok');
    } catch (err) {
      if (this.name === name) this.note(`${what}: ${err instanceof RequestFailed ? err.message : String(err)}`, 'error');
    } finally {
      this.busy = false;
      this.changed();
    }
  }

  private note(text: string, kind: 'info' | 'ok' | 'error'): void {
    this.status.className = text === '' ? 'message' : `message message-${kind}`;
    this.status.replaceChildren(...(kind === 'error' ? [el('strong', {}, 'Failed: ')] : []), text);
  }
}
