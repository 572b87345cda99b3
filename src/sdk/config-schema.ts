/**
 * Types for a plugin's configuration: the JSON Schema it declares as
 * `configSchema`, and `FromSchema`, which turns a schema written as a literal
 * into the type of `ctx.config`. Types only; nothing here runs.
 */

export type JsonTypeName = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/** A JSON Schema (draft-07 or 2020-12) as a plugin writes it; keywords not listed are allowed as well. */
export interface JsonSchema {
  readonly $schema?: string;
  readonly $id?: string;
  readonly type?: JsonTypeName | readonly JsonTypeName[];
  readonly title?: string;
  readonly description?: string;
  readonly properties?: { readonly [name: string]: JsonSchema | boolean };
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema | boolean;
  readonly items?: JsonSchema | boolean;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly default?: unknown;
  readonly anyOf?: readonly (JsonSchema | boolean)[];
  readonly oneOf?: readonly (JsonSchema | boolean)[];
  readonly [keyword: string]: unknown;
}

/** The configuration of a plugin: a JSON object. */
export type PluginConfig = { readonly [key: string]: unknown };

/** Bounds the recursion of `FromSchema` (schemas nested deeper become `unknown`). */
type Next = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

/**
 * The TypeScript type of values valid against schema `S`, for schemas written
 * as literals. Understood: `type` (one or several), `properties`, `required`,
 * `default` (a property with a default is always present: the host applies
 * it), `additionalProperties`, `items`, `enum`, `const`, `anyOf`, `oneOf`.
 * Anything else (`$ref`, `allOf`, conditionals) gives `unknown` there.
 */
export type FromSchema<S, D extends number = 9> = D extends 0
  ? unknown
  : S extends true
    ? unknown
    : S extends false
      ? never
      : S extends { readonly const: infer V }
        ? V
        : S extends { readonly enum: readonly (infer V)[] }
          ? V
          : S extends { readonly anyOf: readonly (infer A)[] }
            ? FromSchema<A, Next[D]>
            : S extends { readonly oneOf: readonly (infer A)[] }
              ? FromSchema<A, Next[D]>
              : S extends { readonly type: infer T }
                ? JsonTypeName extends TypeNames<T>
                  ? unknown
                  : FromType<S, TypeNames<T>, D>
                : S extends { readonly properties: object }
                  ? FromObject<S, D>
                  : unknown;

type TypeNames<T> = T extends readonly (infer U)[] ? U : T;

type FromType<S, T, D extends number> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'null'
        ? null
        : T extends 'array'
          ? S extends { readonly items: infer I }
            ? readonly FromSchema<I, Next[D]>[]
            : readonly unknown[]
          : T extends 'object'
            ? FromObject<S, D>
            : unknown;

type RequiredNames<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;
type WithDefault<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P];
type Simplify<T> = { [K in keyof T]: T[K] } & {};

type FromObject<S, D extends number> = S extends { readonly properties: infer P }
  ? Simplify<
      { readonly [K in keyof P as K extends RequiredNames<S> | WithDefault<P> ? K : never]: FromSchema<P[K], Next[D]> } & {
        readonly [K in keyof P as K extends RequiredNames<S> | WithDefault<P> ? never : K]?: FromSchema<P[K], Next[D]>;
      }
    >
  : S extends { readonly additionalProperties: infer A }
    ? A extends false
      ? Record<string, never>
      : { readonly [key: string]: FromSchema<A, Next[D]> }
    : { readonly [key: string]: unknown };

/** The configuration of a plugin that declares no `configSchema`: always `{}`. */
// biome-ignore lint/complexity/noBannedTypes: exactly the empty object, so reading any key is a type error
export type NoConfig = {};

/** The type of `ctx.config` for a plugin declaring schema `S` (none: `NoConfig`). */
export type ConfigOf<S> = [S] extends [never] ? NoConfig : FromSchema<S> extends infer C extends object ? C : PluginConfig;
