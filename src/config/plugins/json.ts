/** JSON values as configuration holds them: what PostgreSQL's `jsonb` stores and `JSON.parse` returns. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A JSON pointer (RFC 6901) from its reference tokens; the whole document is `""`. */
export function pointerOf(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${String(t).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** How a pointer reads in a message: `/` for the whole document, the pointer itself otherwise. */
export function showPointer(pointer: string): string {
  return pointer === '' ? '/' : pointer;
}

/** Objects and arrays frozen all the way down: every version shares nothing it could change. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
