import path from 'node:path';
import { FASTIFY_TYPES } from './sdk-path.js';

/**
 * Variance annotations for Fastify's largest generic interface, added to its declaration file as the
 * checker reads it.
 *
 * Why: a plugin handler that uses its `request` makes TypeScript compare two instantiations of
 * `FastifyInstance`, and to do that it first measures the variance of each of its five type
 * parameters by comparing the whole interface structurally with marker types: some 60,000 type
 * instantiations, 150–250 ms of every check with a warm checker (0.7 s in a cold `tsc`). Variance is
 * remembered by a type checker, and every check is a new program with a new checker, so a reload paid
 * it every time. Declared variance (`in`/`out`, TypeScript 4.7) is taken as is instead.
 *
 * Why it is safe: the annotations are exactly the variances TypeScript measures for this declaration
 * (all reliable: none is flagged unmeasurable or unreliable), so every comparison has the same outcome,
 * and the test suite checks that they still are for the installed Fastify. The declaration is patched
 * only when its header is exactly the text below; any other Fastify keeps its file as is (checks are
 * then slower, not different).
 */
const PATCHES: ReadonlyArray<{ file: string; header: string; annotated: string }> = [
  {
    file: path.join(path.dirname(FASTIFY_TYPES), 'types', 'instance.d.ts'),
    header: `export interface FastifyInstance<
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  Logger extends FastifyBaseLogger = FastifyBaseLogger,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault
> {`,
    annotated: `export interface FastifyInstance<
  out RawServer extends RawServerBase = RawServerDefault,
  in out RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  in out RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  in out Logger extends FastifyBaseLogger = FastifyBaseLogger,
  in out TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault
> {`,
  },
];

/** The variances the annotations above declare, by interface name (what the tests compare with TypeScript's own measure). */
export const DECLARED_VARIANCES: Readonly<Record<string, readonly string[]>> = {
  FastifyInstance: ['out', 'in out', 'in out', 'in out', 'in out'],
};

/** `text` of `fileName` as the checker reads it: with the annotations when the file is one patched and its header matches. */
export function withDeclaredVariance(fileName: string, text: string): string {
  for (const p of PATCHES) {
    if (fileName !== p.file && path.resolve(fileName) !== p.file) continue;
    return text.includes(p.header) ? text.replace(p.header, p.annotated) : text;
  }
  return text;
}

/** Whether every patch applies to the installed declarations (false: a Fastify whose headers changed). */
export function declaredVarianceApplies(read: (file: string) => string | undefined): boolean {
  return PATCHES.every((p) => read(p.file)?.includes(p.header) === true);
}
