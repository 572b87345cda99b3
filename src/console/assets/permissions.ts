// What the page's token may do. The console asks the control plane once per token (`GET /tokens/self`) and hides
// every button whose action the token does not hold the scope for: Enable, Disable and Reload need operate:NAME,
// Rollback, Promote and Abort need publish:NAME, the configuration needs read (showing it) and operate:NAME
// (saving it). The server refuses such calls anyway: hiding them only spares a person the refusal.
import { byId, el, timeEl } from './dom.js';

interface TokenSelf {
  name: string;
  scopes: string[];
  operate: string[];
  publish: string[];
}

type Kind = 'read' | 'operate' | 'publish';

/** Rows and dialogs are rebuilt as the data changes: every rebuild is checked again. */
export class Permissions {
  private self: TokenSelf | undefined;
  private loadedFor: string | undefined;
  private timer: number | undefined;

  constructor(private readonly token: HTMLInputElement) {
    new MutationObserver(() => this.apply()).observe(document.body, { childList: true, subtree: true });
    token.addEventListener('input', () => this.soon());
    byId('token-forget').addEventListener('click', () => this.soon());
    this.soon();
  }

  /** True when the token may do `kind` on `plugin`; with no known token, true (nothing to go by: the server decides). */
  may(kind: Kind, plugin: string): boolean {
    const s = this.self;
    if (s === undefined || s.scopes.includes('admin')) return true;
    if (kind === 'read') return s.scopes.includes('read');
    const list = kind === 'operate' ? s.operate : s.publish;
    return list.includes('*') || list.includes(plugin);
  }

  private soon(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.load(), 250);
  }

  private async load(): Promise<void> {
    const token = this.token.value.trim();
    if (token === this.loadedFor) return;
    this.loadedFor = token;
    let self: TokenSelf | undefined;
    // only a scoped token is asked about (ADMIN_TOKEN holds admin, and anything else would only be refused)
    if (token.startsWith('ph_')) {
      try {
        const res = await fetch('/tokens/self', {
          headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
          cache: 'no-store',
        });
        if (res.ok) self = (await res.json()) as TokenSelf;
      } catch {
        self = undefined;
      }
    }
    if (this.token.value.trim() !== token) return; // changed meanwhile: the next load decides
    this.self = self;
    document.body.dataset.tokenScopes = self === undefined ? '' : self.scopes.join(' ');
    this.apply();
  }

  /** The plugin the detail dialog shows (its URL fragment). */
  private detailPlugin(): string {
    const m = /^#plugin=(.+)$/.exec(location.hash);
    return m === null ? '' : decodeURIComponent(m[1] as string);
  }

  private apply(): void {
    if (this.token.value.trim() !== this.loadedFor) this.soon();
    for (const b of document.querySelectorAll<HTMLButtonElement>('#plugins button[data-action]')) {
      b.classList.toggle('denied', !this.may('operate', b.dataset.plugin ?? ''));
    }
    const plugin = this.detailPlugin();
    for (const b of document.querySelectorAll<HTMLButtonElement>('#detail-versions button')) {
      b.classList.toggle('denied', !this.may('publish', plugin));
    }
    for (const b of document.querySelectorAll<HTMLButtonElement>('#config-save'))
      b.classList.toggle('denied', !this.may('operate', plugin));
    for (const b of document.querySelectorAll<HTMLButtonElement>('#config-load')) b.classList.toggle('denied', !this.may('read', plugin));
  }
}

interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  via: string;
  action: string;
  outcome: string;
  status: number | null;
  code: string | null;
}

/** The detail dialog's audit section: the plugin's latest audit entries, read with the page's token (`read`). */
export async function renderAudit(box: HTMLElement, plugin: string, token: string): Promise<void> {
  if (token === '') {
    box.replaceChildren(el('p', { class: 'hint' }, 'The audit trail needs a token holding read.'));
    return;
  }
  const res = await fetch(`/audit?plugin=${encodeURIComponent(plugin)}&limit=20`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    cache: 'no-store',
  }).catch(() => undefined);
  if (res === undefined || !res.ok) {
    box.replaceChildren(
      el('p', { class: 'hint' }, `The audit trail could not be read${res ? ` (${res.status})` : ''}: it needs a token holding read.`),
    );
    return;
  }
  const { entries } = (await res.json()) as { entries: AuditEntry[] };
  box.replaceChildren(
    entries.length === 0
      ? el('p', {}, 'No entry.')
      : el(
          'ol',
          { class: 'history audit' },
          ...entries.map((e) =>
            el(
              'li',
              { 'data-outcome': e.outcome },
              timeEl(e.at),
              ` ${e.actor} (${e.via}): ${e.action} → ${e.outcome}`,
              e.code === null ? null : ` ${e.code}`,
            ),
          ),
        ),
  );
}
