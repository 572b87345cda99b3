import { type ConfigState, getConfig, putConfig, RequestFailed } from './api.js';
import { byId, el, timeEl } from './dom.js';

/**
 * The configuration section of the detail view: reads the stored configuration through the
 * admin API (it needs the token), edits it as JSON, and saves it with `PUT` and `If-Match`, so
 * a change someone else made meanwhile is refused rather than overwritten. Validation is the
 * server's: its refusal, naming each field, is shown as is. The section is loaded when the
 * view opens and on request only: a refresh of the view never overwrites an edit in progress.
 */
export class ConfigEditor {
  private readonly box = byId('detail-config');
  private name: string | undefined;
  private revision = 0;

  constructor(private readonly tokens: { get(): string; set(token: string): void }) {}

  private token(): string {
    return this.tokens.get();
  }

  /** A plugin's view opened: read its configuration when a token is there, else say what is needed. */
  open(name: string, registered: boolean): void {
    this.name = name;
    if (!registered) {
      this.box.replaceChildren(el('p', {}, 'Not registered: no configuration.'));
      return;
    }
    if (this.token() === '') {
      // the page's token field is outside this modal dialog: ask for it here (it is kept for the page as well)
      const input = el('input', { id: 'config-token', type: 'password', autocomplete: 'off', spellcheck: 'false' });
      const load = el('button', { type: 'button', id: 'config-load' }, 'Show configuration');
      load.addEventListener('click', () => {
        this.tokens.set(input.value.trim());
        void this.load();
      });
      this.box.replaceChildren(
        el('p', { class: 'hint' }, 'Reading and changing the configuration needs the admin token.'),
        el('div', { class: 'config-actions' }, el('label', { for: 'config-token' }, 'Admin token'), input, load),
      );
      return;
    }
    void this.load();
  }

  private async load(): Promise<void> {
    const name = this.name;
    if (name === undefined) return;
    this.box.replaceChildren(el('p', { class: 'loading' }, 'Loading…'));
    try {
      const state = await getConfig(name, this.token());
      if (this.name === name) this.render(state);
    } catch (err) {
      if (this.name !== name) return;
      const retry = el('button', { type: 'button', id: 'config-load' }, 'Try again');
      retry.addEventListener('click', () => void this.load());
      this.box.replaceChildren(el('p', { class: 'notice', role: 'alert' }, messageOf(err)), retry);
    }
  }

  private render(s: ConfigState, note?: { text: string; kind: 'ok' | 'error' }): void {
    this.revision = s.revision;
    const text = el('textarea', { id: 'config-text', rows: '10', spellcheck: 'false', 'aria-label': `Configuration of ${s.name} (JSON)` });
    text.value = JSON.stringify(s.config, null, 2);
    const save = el('button', { type: 'button', id: 'config-save' }, 'Save');
    const reload = el('button', { type: 'button', id: 'config-reload' }, 'Discard changes');
    const status = el('p', { id: 'config-status', role: 'status', 'aria-live': 'polite' });
    if (note !== undefined) {
      status.className = `message message-${note.kind}`;
      status.textContent = note.text;
    }
    save.addEventListener('click', () => void this.save(text, status));
    reload.addEventListener('click', () => void this.load());
    const parts: (HTMLElement | null)[] = [
      el(
        'p',
        { class: 'config-meta' },
        s.revision === 0 ? 'Nothing stored: the defaults apply.' : `Revision ${s.revision}, by ${s.updated_by || '?'} `,
        s.revision === 0 ? null : timeEl(s.updated_at),
      ),
      el(
        'p',
        { class: 'hint' },
        'The whole configuration, as JSON. Give secrets as references, {"$env": "NAME"} or {"$file": "/path"}: each node resolves them itself, and their values are never shown.',
      ),
      text,
      el('div', { class: 'config-actions' }, save, reload),
      status,
      s.errors.length === 0 ? null : problemList('The stored configuration does not validate:', s.errors),
      s.effective === null ? null : details('With the defaults applied', JSON.stringify(s.effective, null, 2)),
      s.schema === null
        ? el(
            'p',
            { class: 'hint' },
            s.schema_error
              ? `Schema unavailable: ${s.schema_error.message}`
              : 'The plugin declares no configSchema: its configuration is {}.',
          )
        : details('Schema', JSON.stringify(s.schema, null, 2)),
    ];
    this.box.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  private async save(text: HTMLTextAreaElement, status: HTMLElement): Promise<void> {
    const name = this.name;
    if (name === undefined) return;
    let value: unknown;
    try {
      value = JSON.parse(text.value);
    } catch (err) {
      status.className = 'message message-error';
      status.textContent = `Not JSON: ${err instanceof Error ? err.message : String(err)}`;
      return;
    }
    status.className = 'message message-info';
    status.textContent = 'Saving…';
    try {
      const r = await putConfig(name, value, this.revision, this.token());
      if (this.name !== name) return;
      const applied = r.plugin?.last_error
        ? `; this node: ${r.plugin.last_error.code}: ${r.plugin.last_error.message}`
        : r.settled
          ? `; this node: ${r.plugin?.state ?? '?'}`
          : '; this node is still applying it';
      this.render(r, {
        text: r.changed ? `Stored as revision ${r.revision}${applied}.` : 'No change: that is what was stored.',
        kind: r.plugin?.last_error ? 'error' : 'ok',
      });
    } catch (err) {
      if (this.name !== name) return;
      status.className = 'message message-error';
      status.replaceChildren(messageOf(err), err instanceof RequestFailed && err.errors.length > 0 ? problemList('', err.errors) : '');
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof RequestFailed ? err.message : err instanceof Error ? err.message : String(err);
}

function problemList(title: string, errors: { pointer: string; message: string }[]): HTMLElement {
  return el(
    'div',
    { class: 'config-errors' },
    title === '' ? null : el('p', {}, title),
    el('ul', {}, ...errors.map((e) => el('li', {}, el('code', {}, e.pointer), ` ${e.message}`))),
  );
}

function details(summary: string, body: string): HTMLElement {
  return el('details', {}, el('summary', {}, summary), el('pre', { class: 'config-json' }, body));
}
