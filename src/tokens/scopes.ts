import { HostError } from '../errors/index.js';
import { PLUGIN_NAME_PATTERN } from '../model/index.js';

/**
 * What a token may do. `read`: every read of the control plane; `operate:NAME`:
 * enable, disable, toggle, reload, isolation and configuration of NAME;
 * `publish:NAME`: upload, versions, rollback, rollouts and removal of NAME;
 * `admin`: everything, tokens included. NAME may be `*` (every plugin).
 */
export type Scope = 'read' | 'admin' | `operate:${string}` | `publish:${string}`;

/** What one call needs: a scope kind, and for plugin scopes the plugin it acts on (`any`: a valid token, whatever its scopes). */
export type Need = { kind: 'any' } | { kind: 'read' } | { kind: 'admin' } | { kind: 'operate' | 'publish'; plugin: string };

const SCOPE_PATTERN = new RegExp(`^(read|admin|(operate|publish):(\\*|${PLUGIN_NAME_PATTERN.source.slice(1, -1)}))$`);

/** At most this many scopes per token: a list is for people to read. */
export const MAX_SCOPES = 32;

/** Validates a list of scopes (`PH_ERR_SCOPE_INVALID` naming the first bad one); duplicates are dropped. */
export function parseScopes(raw: unknown): Scope[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new HostError('PH_ERR_SCOPE_INVALID', 'scopes must be a non-empty list (read, admin, operate:NAME, publish:NAME; NAME may be *)');
  }
  if (raw.length > MAX_SCOPES) throw new HostError('PH_ERR_SCOPE_INVALID', `at most ${MAX_SCOPES} scopes per token`);
  const out = new Set<Scope>();
  for (const s of raw) {
    if (typeof s !== 'string' || !SCOPE_PATTERN.test(s)) {
      const shown = typeof s === 'string' ? JSON.stringify(s.slice(0, 80)) : String(s);
      throw new HostError('PH_ERR_SCOPE_INVALID', `${shown} is not a scope (read, admin, operate:NAME, publish:NAME; NAME may be *)`);
    }
    out.add(s as Scope);
  }
  return [...out];
}

/** The scope a refusal names: the narrowest one that would have allowed the call. */
export function describeNeed(need: Need): string {
  return need.kind === 'read' || need.kind === 'admin' || need.kind === 'any' ? need.kind : `${need.kind}:${need.plugin}`;
}

/**
 * True when `scopes` allow `need`. `admin` allows everything; a plugin scope
 * allows only its plugin (or every plugin with `*`). No scope implies `read`
 * except `admin`: a publisher's token reads nothing it was not given.
 */
export function allows(scopes: readonly string[], need: Need): boolean {
  if (need.kind === 'any' || scopes.includes('admin')) return true;
  if (need.kind === 'admin') return false;
  if (need.kind === 'read') return scopes.includes('read');
  return scopes.includes(`${need.kind}:*`) || scopes.includes(`${need.kind}:${need.plugin}`);
}

/** The plugins a token may act on for one kind (`*` for every one): the console hides the rest. */
export function pluginsFor(scopes: readonly string[], kind: 'operate' | 'publish'): string[] {
  if (scopes.includes('admin')) return ['*'];
  const prefix = `${kind}:`;
  return scopes.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
}
