import ajvCompiler from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifySchemaCompiler, FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;

/**
 * Route schemas compiled on first use instead of at `ready()`.
 *
 * Fastify compiles every route's validators (Ajv, including its meta-schema)
 * and response serializers (fast-json-stringify) while the server gets ready:
 * for the host's ~60 core and admin routes that is about half of an empty
 * node's start-up, spent on routes most nodes never serve (admin writes,
 * rollouts, uploads). Here each route gets a stand-in that compiles the real
 * function the first time a request needs it and then delegates to it; the
 * compilers themselves (the Ajv instances) are created on first use too.
 *
 * A schema mistake of the host's own routes therefore shows at the route's
 * first request rather than at start: `compileAll()` compiles everything
 * pending, which the tests call to keep that failure at test time.
 */

/** A validation function as Fastify calls it: a result, and Ajv-style `errors` read after a `false`. */
type Validate = ((data: unknown) => unknown) & { errors?: unknown };
type Serialize = (data: unknown) => string;
type ValidatorCompiler = (route: { schema?: unknown; method?: string; url?: string; httpPart?: string }) => Validate;
type SerializerCompiler = (route: {
  schema?: unknown;
  method?: string;
  url?: string;
  httpStatus?: string;
  contentType?: string;
}) => Serialize;

export class LazySchemaCompilers {
  private readonly pending = new Set<() => void>();

  /** The result of `compile`, computed on the first call of the returned getter (or by `compileAll`). */
  private deferred<F>(compile: () => F): () => F {
    let real: F | undefined;
    const force = () => {
      real ??= compile();
      this.pending.delete(force);
      return real;
    };
    this.pending.add(force);
    return () => real ?? force();
  }

  /** A validator that compiles with `compile` when first called. */
  validator(compile: () => Validate): Validate {
    const real = this.deferred(compile);
    const validate: Validate = (data) => {
      const fn = real();
      const result = fn(data);
      validate.errors = fn.errors;
      return result;
    };
    return validate;
  }

  /** A serializer that compiles with `compile` when first called. */
  serializer(compile: () => Serialize): Serialize {
    const real = this.deferred(compile);
    return (data) => real()(data);
  }

  /** Wraps a route-level validator compiler (`setValidatorCompiler`) so each route compiles on first use. */
  validatorCompiler(compiler: () => FastifySchemaCompiler<unknown>): FastifySchemaCompiler<unknown> {
    return (route) => this.validator(() => compiler()(route) as Validate) as ReturnType<FastifySchemaCompiler<unknown>>;
  }

  /**
   * Fastify's `schemaController.compilersFactory`: its default Ajv and
   * fast-json-stringify compilers, built and used on first need.
   */
  factories(): CompilersFactory {
    const buildValidator = ajvCompiler();
    const buildSerializer = SerializerSelector();
    return {
      buildValidator: (externalSchemas: unknown, options: unknown) => {
        let compiler: ValidatorCompiler | undefined;
        // biome-ignore lint/suspicious/noExplicitAny: Fastify passes its own server options through
        const get = () => (compiler ??= buildValidator(externalSchemas as any, options as any) as unknown as ValidatorCompiler);
        return (route: Parameters<ValidatorCompiler>[0]) => this.validator(() => get()(route));
      },
      buildSerializer: (externalSchemas: unknown, options: unknown) => {
        let compiler: SerializerCompiler | undefined;
        // biome-ignore lint/suspicious/noExplicitAny: Fastify passes its own serializer options through
        const get = () => (compiler ??= buildSerializer(externalSchemas, options as any) as unknown as SerializerCompiler);
        return (route: Parameters<SerializerCompiler>[0]) => this.serializer(() => get()(route));
      },
      // the stand-ins behave as Ajv's functions do where Fastify looks (result, then `errors`), not in every property
    } as unknown as CompilersFactory;
  }

  /** Compiles every stand-in not compiled yet (throws on the first schema that does not compile). */
  compileAll(): number {
    const all = [...this.pending];
    for (const force of all) force();
    return all.length;
  }
}
