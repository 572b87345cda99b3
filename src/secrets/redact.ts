/**
 * The resolved values of secret references this process handed to plugins.
 * Every log line (see `createLogger`) and every recorded error message pass
 * through `redact`, so a value never reaches a log, the observed-state table
 * or an API answer, whoever wrote it (the host, Fastify, or the plugin itself).
 * Values are only added: an old version may still log while it drains.
 */
const secrets = new Set<string>();
/** Each secret and its encoded forms (see `encodedForms`), longest first (a secret containing another is replaced whole). */
let forms: string[] = [];

/**
 * The forms in which a value commonly leaves a program: JSON-escaped,
 * URL-encoded (`encodeURIComponent`, and `+` for spaces as in a form body),
 * base64 (standard and URL-safe, with and without padding) and hex (either
 * case). A value encoded as part of a longer string (base64 of `user:secret`)
 * is not found: its encoding does not contain the secret's own.
 */
export function encodedForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const b64 = bytes.toString('base64');
  const hex = bytes.toString('hex');
  return [
    secret,
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    encodeURIComponent(secret).replaceAll('%20', '+'),
    b64,
    b64.replace(/=+$/, ''),
    bytes.toString('base64url'),
    hex,
    hex.toUpperCase(),
  ];
}

export const REDACTED = '[REDACTED]';

export function noteSecrets(values: Iterable<string>): void {
  let added = false;
  for (const v of values) {
    if (v === '' || secrets.has(v)) continue;
    secrets.add(v);
    added = true;
  }
  if (!added) return;
  const all = new Set<string>();
  for (const s of secrets) for (const f of encodedForms(s)) if (f !== '') all.add(f);
  forms = [...all].sort((a, b) => b.length - a.length);
}

function contains(text: string): boolean {
  for (const f of forms) if (text.includes(f)) return true;
  return false;
}

function replaceAll(text: string): string {
  let out = text;
  for (const f of forms) if (out.includes(f)) out = out.split(f).join(REDACTED);
  return out;
}

/** `text` with every secret value replaced by `[REDACTED]`. */
export function redact(text: string): string {
  return forms.length === 0 || !contains(text) ? text : replaceAll(text);
}

/** A JSON value with every secret value replaced in its strings (a plugin's health detail, before it is answered). */
export function redactJson<T>(v: T): T {
  return forms.length === 0 ? v : (scrub(v) as T);
}

function scrub(v: unknown): unknown {
  if (typeof v === 'string') return redact(v);
  if (Array.isArray(v)) return v.map(scrub);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [redact(k), scrub(x)]));
  }
  return v;
}

/**
 * One serialized pino line with secret values replaced. A line holding one is
 * parsed and its strings scrubbed, so it stays valid JSON; a line that does
 * not parse is replaced as text.
 */
export function redactLogLine(line: string): string {
  if (forms.length === 0 || !contains(line)) return line;
  const trailing = line.endsWith('\n') ? '\n' : '';
  try {
    return JSON.stringify(scrub(JSON.parse(line))) + trailing;
  } catch {
    return replaceAll(line);
  }
}
