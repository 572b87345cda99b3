import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describeError } from '../../errors/index.js';
import { isJsonObject, type JsonObject, type JsonValue } from './json.js';
import { assertNoProblems, type ConfigProblem, findReferences, isReference } from './references.js';

/**
 * A plugin's `configSchema`: JSON Schema draft-07 (the default, or `$schema`
 * `http://json-schema.org/draft-07/schema#`) or draft 2020-12 (`$schema`
 * `https://json-schema.org/draft/2020-12/schema`), as Ajv supports them.
 * Validation reports every failing field, applies `default`s and never
 * coerces types; messages never quote the value that failed.
 */
export type ConfigSchema = Record<string, unknown>;

const DRAFT_07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/;
const DRAFT_2020 = /^https?:\/\/json-schema\.org\/draft\/2020-12\/schema#?$/;
/** Problems listed in one answer: a schema with many alternatives can report hundreds. */
const MAX_PROBLEMS = 20;
/** Compiled validators kept, by schema text (one per version of each plugin in practice). */
const MAX_COMPILED = 256;

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => void;

const OPTIONS = {
  allErrors: true,
  useDefaults: true,
  coerceTypes: false,
  removeAdditional: false,
  strict: false,
  verbose: false,
  logger: false,
} as const;

let engines: { draft07: Ajv; draft2020: Ajv } | undefined;
function engine(schema: ConfigSchema): Ajv {
  engines ??= (() => {
    const draft07 = new Ajv(OPTIONS);
    const draft2020 = new Ajv2020(OPTIONS) as unknown as Ajv;
    addFormats(draft07);
    addFormats(draft2020);
    return { draft07, draft2020 };
  })();
  const declared = schema.$schema;
  if (declared === undefined || (typeof declared === 'string' && DRAFT_07.test(declared))) return engines.draft07;
  if (typeof declared === 'string' && DRAFT_2020.test(declared)) return engines.draft2020;
  throw new Error(`$schema ${JSON.stringify(declared)} is not supported (use draft-07 or draft 2020-12)`);
}

const compiled = new Map<string, ValidateFunction>();

/** The validator of `schema` (compiled once per schema text). Throws a plain Error when the schema is not one. */
function validatorOf(schema: ConfigSchema): ValidateFunction {
  const key = JSON.stringify(schema);
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  const ajv = engine(schema);
  const fn = ajv.compile(schema);
  // Ajv keeps every schema it compiled (and refuses a second one with the same $id): the copy above is ours.
  ajv.removeSchema(schema);
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, fn);
  return fn;
}

/**
 * Checks a `configSchema` a plugin declares: a JSON object, of a supported
 * draft, that Ajv compiles, describing an object. Returns a message when it
 * is not one (for `PH_ERR_METADATA_INVALID`), undefined when it is.
 */
export function schemaProblem(schema: unknown): string | undefined {
  if (!isJsonObject(schema as JsonValue)) return 'must be a JSON Schema object';
  const s = schema as ConfigSchema;
  const type = s.type;
  if (type !== undefined && type !== 'object' && !(Array.isArray(type) && type.length === 1 && type[0] === 'object')) {
    return 'must describe an object (type "object")';
  }
  try {
    JSON.stringify(s);
    validatorOf(s);
    return undefined;
  } catch (err) {
    return `is not a valid JSON Schema: ${describeError(err)}`;
  }
}

function escapeToken(t: string): string {
  return t.replaceAll('~', '~0').replaceAll('/', '~1');
}

function problemOf(e: ErrorObject): ConfigProblem {
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required' && typeof params.missingProperty === 'string') {
    return { pointer: `${e.instancePath}/${escapeToken(params.missingProperty)}`, message: 'is required' };
  }
  if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return { pointer: `${e.instancePath}/${escapeToken(params.additionalProperty)}`, message: 'is not allowed (not in the schema)' };
  }
  return { pointer: e.instancePath, message: e.message ?? `fails ${e.keyword}` };
}

function problemsOf(errors: readonly ErrorObject[] | null | undefined, skip: (pointer: string) => boolean): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const p = problemOf(e);
    const k = `${p.pointer}\0${p.message}`;
    if (skip(p.pointer) || seen.has(k)) continue;
    seen.add(k);
    out.push(p);
    if (out.length >= MAX_PROBLEMS) break;
  }
  return out;
}

function notAnObject(config: unknown): ConfigProblem[] {
  if (isJsonObject(config as JsonValue)) return [];
  const what = config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config;
  return [{ pointer: '', message: `must be an object, got ${what}` }];
}

/** Without a schema a plugin takes no configuration: every key is refused. */
function withoutSchema(config: JsonObject): ConfigProblem[] {
  return Object.keys(config).map((k) => ({
    pointer: `/${escapeToken(k)}`,
    message: 'is not allowed: the plugin declares no configSchema, so its configuration is {}',
  }));
}

/**
 * Validates a configuration as stored (references unresolved) against
 * `schema`: what the admin API and the CLI check before writing. A value that
 * is a secret reference is accepted where the schema places a value (its type
 * is checked when it resolves, at load); everything else must pass. Returns
 * the configuration with the schema's defaults applied and references kept;
 * throws `PH_ERR_PLUGIN_CONFIG_INVALID` naming each failing field.
 */
export function checkStoredConfig(plugin: string, schema: ConfigSchema | undefined, config: unknown): JsonObject {
  assertNoProblems(plugin, notAnObject(config));
  const stored = config as JsonObject;
  const { refs, problems } = findReferences(stored);
  assertNoProblems(plugin, problems);
  if (schema === undefined) {
    assertNoProblems(plugin, withoutSchema(stored));
    return {};
  }
  const effective = structuredClone(stored);
  const validate = validatorOf(schema);
  validate(effective);
  const under = (pointer: string) => refs.some((r) => pointer === r.pointer || pointer.startsWith(`${r.pointer}/`));
  assertNoProblems(plugin, problemsOf(validate.errors, under));
  return restoreReferences(effective, stored);
}

/** Puts back the reference objects of `stored` that applying defaults may have filled in. */
function restoreReferences(effective: JsonObject, stored: JsonObject): JsonObject {
  const walk = (e: JsonValue, s: JsonValue | undefined): JsonValue => {
    if (isReference(s)) return s;
    if (Array.isArray(e) && Array.isArray(s)) return e.map((x, i) => walk(x, s[i]));
    if (isJsonObject(e) && isJsonObject(s as JsonValue)) {
      const so = s as JsonObject;
      return Object.fromEntries(Object.entries(e).map(([k, x]) => [k, walk(x, so[k])]));
    }
    return e;
  };
  return walk(effective, stored) as JsonObject;
}

/**
 * Validates the configuration a version will get, references resolved,
 * against its schema, and applies defaults: what a node checks at load.
 * Throws `PH_ERR_PLUGIN_CONFIG_INVALID` naming each failing field (never the value).
 */
export function finalizeConfig(plugin: string, schema: ConfigSchema | undefined, resolved: JsonObject): JsonObject {
  assertNoProblems(plugin, notAnObject(resolved));
  if (schema === undefined) {
    assertNoProblems(plugin, withoutSchema(resolved));
    return {};
  }
  const out = structuredClone(resolved);
  const validate = validatorOf(schema);
  validate(out);
  assertNoProblems(
    plugin,
    problemsOf(validate.errors, () => false),
  );
  return out;
}
