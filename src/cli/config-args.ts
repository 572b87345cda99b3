import type { JsonObject, JsonValue } from '../config/plugins/index.js';
import { HostError } from '../errors/index.js';

/**
 * `KEY=VALUE` arguments of `plugin-host config set` as a JSON merge patch:
 * `a.b=1` sets a nested key, `KEY=null` removes one. A value is JSON when it
 * parses as JSON (`5`, `true`, `"5"`, `{"$env":"API_KEY"}`), a string otherwise.
 */
export function configPatchOf(pairs: readonly string[]): JsonObject {
  const patch: JsonObject = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new HostError('PH_ERR_USAGE', `expected KEY=VALUE, got "${pair}"`);
    const path = pair.slice(0, eq).split('.');
    if (path.some((k) => k === '')) throw new HostError('PH_ERR_USAGE', `"${pair.slice(0, eq)}" is not a key (a.b.c)`);
    const raw = pair.slice(eq + 1);
    let value: JsonValue;
    try {
      value = JSON.parse(raw) as JsonValue;
    } catch {
      value = raw;
    }
    let at = patch;
    for (const k of path.slice(0, -1)) {
      const next = at[k];
      if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) at[k] = {};
      at = at[k] as JsonObject;
    }
    at[path[path.length - 1] as string] = value;
  }
  return patch;
}
