import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { HostError } from '../../errors/index.js';
import { SECRET_SETTINGS } from '../index.js';
import { isJsonObject, type JsonObject, type JsonValue, pointerOf, showPointer } from './json.js';

/**
 * Secrets by reference: a configuration value `{"$env": "NAME"}` or
 * `{"$file": "/abs/path"}` is stored as written and resolved on each node,
 * when the plugin loads, from that node's environment or file system. The
 * resolved value exists only in the configuration handed to the plugin.
 */
export type ReferenceKind = '$env' | '$file';

export interface FoundReference {
  pointer: string;
  kind: ReferenceKind;
  target: string;
}

/** One reason a configuration is refused, located by JSON pointer. */
export interface ConfigProblem {
  pointer: string;
  message: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A secret file larger than this is refused rather than read into every configuration. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Variables the host keeps for itself: a plugin never gets them through its configuration. */
export const HOST_SECRET_VARIABLES: ReadonlySet<string> = new Set(SECRET_SETTINGS.flatMap((n) => [n, `${n}_FILE`]));

/** The environment secret references resolve from: a copy taken before the host removed its own secrets. */
export type SecretEnvironment = Readonly<Record<string, string | undefined>>;

/** Where `$file` references may read when the host names no other directory (`SECRETS_DIR`): Docker's and Kubernetes' usual mount. */
export const DEFAULT_SECRETS_DIR = '/run/secrets';
/** Kernel interfaces, never read whatever `SECRETS_DIR` says: `/proc/self/environ` alone holds the host's environment. */
const NEVER_READ = ['/proc', '/sys', '/dev'];
/** The secrets directory of each environment snapshot (set once by the host that took it). */
const secretsDirs = new WeakMap<SecretEnvironment, string>();

/**
 * Binds to the environment snapshot `env` the one directory its `$file`
 * references may read (the host's `SECRETS_DIR`); returns `env`. A snapshot
 * never bound reads under `/run/secrets`.
 */
export function withSecretsDir(env: SecretEnvironment, dir: string): SecretEnvironment {
  secretsDirs.set(env, dir);
  return env;
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

function isReferenceShaped(v: JsonObject): boolean {
  return Object.hasOwn(v, '$env') || Object.hasOwn(v, '$file');
}

/** True for a well-formed reference object (exactly one of `$env` / `$file`, a string). */
export function isReference(v: unknown): v is { $env: string } | { $file: string } {
  if (!isJsonObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === '$env' || keys[0] === '$file') && typeof v[keys[0]] === 'string';
}

/**
 * Every reference in `config`, and every malformed one as a problem: a
 * reference object with other keys, a variable name that is not one, a
 * relative path, or a host secret (`ADMIN_TOKEN`, `DATABASE_URL`,
 * `PGPASSWORD` and their `_FILE` forms).
 */
export function findReferences(config: JsonValue): { refs: FoundReference[]; problems: ConfigProblem[] } {
  const refs: FoundReference[] = [];
  const problems: ConfigProblem[] = [];
  const visit = (v: JsonValue, tokens: (string | number)[]) => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) visit(x, [...tokens, i]);
      return;
    }
    if (!isJsonObject(v)) return;
    const pointer = pointerOf(tokens);
    if (!isReferenceShaped(v)) {
      for (const [k, x] of Object.entries(v)) visit(x, [...tokens, k]);
      return;
    }
    if (!isReference(v)) {
      problems.push({ pointer, message: 'must be a secret reference with exactly one string key, {"$env": "NAME"} or {"$file": "/path"}' });
      return;
    }
    const kind: ReferenceKind = Object.hasOwn(v, '$env') ? '$env' : '$file';
    const target = (v as Record<string, string>)[kind] as string;
    if (kind === '$env' && !ENV_NAME.test(target)) {
      problems.push({ pointer, message: `must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), got "${target}"` });
    } else if (kind === '$env' && HOST_SECRET_VARIABLES.has(target)) {
      problems.push({ pointer, message: `must not refer to ${target}: it is a secret of the host` });
    } else if (kind === '$file' && !path.isAbsolute(target)) {
      problems.push({ pointer, message: `must name an absolute file path, got "${target}"` });
    } else {
      refs.push({ pointer, kind, target });
    }
  };
  visit(config, []);
  return { refs, problems };
}

/** Throws `PH_ERR_PLUGIN_CONFIG_INVALID` listing `problems` (each `pointer message`) unless there are none. */
export function assertNoProblems(plugin: string, problems: readonly ConfigProblem[], what = 'configuration'): void {
  if (problems.length === 0) return;
  const listed = problems.map((p) => `${showPointer(p.pointer)} ${p.message}`);
  throw new HostError('PH_ERR_PLUGIN_CONFIG_INVALID', `${plugin}: ${what} is invalid: ${listed.join('; ')}`, {
    details: { errors: problems.map((p) => ({ pointer: showPointer(p.pointer), message: p.message })) },
  });
}

function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Files holding the host's own secrets (`ADMIN_TOKEN_FILE`, …) in `env`: a `$file` reference may not name them. */
function hostSecretFiles(env: SecretEnvironment): Set<string> {
  const out = new Set<string>();
  for (const name of SECRET_SETTINGS) {
    const f = env[`${name}_FILE`];
    if (f !== undefined && f !== '') out.add(realpathOrSelf(f));
  }
  return out;
}

function resolveOne(plugin: string, ref: FoundReference, env: SecretEnvironment, forbiddenFiles: Set<string>): string {
  const fail = (why: string): never => {
    throw new HostError('PH_ERR_PLUGIN_CONFIG_SECRET', `${plugin}: configuration ${showPointer(ref.pointer)}: ${why}`, {
      details: { pointer: showPointer(ref.pointer), [ref.kind]: ref.target },
    });
  };
  if (ref.kind === '$env') {
    const v = env[ref.target];
    if (v === undefined || v === '') return fail(`environment variable ${ref.target} is not set on this node`);
    return v;
  }
  const target = path.resolve(ref.target);
  if (NEVER_READ.some((d) => under(target, d))) return fail(`${ref.target} is under ${NEVER_READ.join(', ')}, which are never read`);
  const dir = realpathOrSelf(secretsDirs.get(env) ?? DEFAULT_SECRETS_DIR);
  try {
    // symbolic links resolved first: a link inside the secrets directory may not lead out of it
    const real = realpathSync(target);
    if (NEVER_READ.some((d) => under(real, d)))
      return fail(`${ref.target} leads to ${real}, under ${NEVER_READ.join(', ')}, which are never read`);
    if (forbiddenFiles.has(real)) return fail(`file ${ref.target} holds a secret of the host`);
    if (!under(real, dir)) return fail(`${ref.target} is not under the secrets directory ${dir} (SECRETS_DIR)`);
    const st = statSync(real);
    if (!st.isFile()) return fail(`${ref.target} is not a file`);
    if (st.size > MAX_SECRET_FILE_BYTES) return fail(`file ${ref.target} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    const v = readFileSync(real, 'utf8').trim();
    if (v === '') return fail(`file ${ref.target} is empty`);
    return v;
  } catch (err) {
    if (err instanceof HostError) throw err;
    return fail(`file ${ref.target} cannot be read on this node (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * A copy of `config` with every reference replaced by its value on this node,
 * and the values themselves (to keep them out of logs). An unset variable or
 * unreadable file throws `PH_ERR_PLUGIN_CONFIG_SECRET` naming it and the field;
 * a malformed or forbidden reference throws `PH_ERR_PLUGIN_CONFIG_INVALID`.
 */
export function resolveReferences(plugin: string, config: JsonObject, env: SecretEnvironment): { config: JsonObject; secrets: string[] } {
  const { refs, problems } = findReferences(config);
  assertNoProblems(plugin, problems);
  if (refs.length === 0) return { config, secrets: [] };
  const forbiddenFiles = hostSecretFiles(env);
  const secrets: string[] = [];
  const byPointer = new Map<string, string>();
  for (const ref of refs) {
    const v = resolveOne(plugin, ref, env, forbiddenFiles);
    byPointer.set(ref.pointer, v);
    secrets.push(v);
  }
  const replace = (v: JsonValue, tokens: (string | number)[]): JsonValue => {
    const hit = byPointer.get(pointerOf(tokens));
    if (hit !== undefined && isReference(v)) return hit;
    if (Array.isArray(v)) return v.map((x, i) => replace(x, [...tokens, i]));
    if (isJsonObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replace(x, [...tokens, k])]));
    return v;
  };
  return { config: replace(config, []) as JsonObject, secrets };
}
