import { isJsonObject, type JsonValue } from './json.js';
import { isReference } from './references.js';

/**
 * JSON merge patch (RFC 7386): objects merge key by key, `null` removes a
 * key, anything else replaces. One addition: a secret reference in the patch
 * replaces the value whole, so `{"key": {"$file": "/x"}}` over a `$env`
 * reference gives a `$file` reference, not an object with both.
 */
export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch) || isReference(patch)) return patch;
  const out: Record<string, JsonValue> = isJsonObject(target as JsonValue) && !isReference(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
