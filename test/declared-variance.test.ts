/**
 * The variance annotations the checker adds to Fastify's declarations apply to the installed Fastify and
 * change no outcome: assignments between instantiations of `FastifyInstance` that differ in one type
 * parameter (a subtype one way, then the other) get the same diagnostics with and without them, and
 * a plugin whose handler uses its `request` is still checked as before.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import ts from 'typescript';
import { DECLARED_VARIANCES, declaredVarianceApplies, withDeclaredVariance } from '../src/compiler/declared-variance.js';
import { FASTIFY_TYPES } from '../src/compiler/sdk-path.js';
import { TypeChecker } from '../src/compiler/typecheck.js';
import { tempDir } from './support/util.js';

const PROBES = `
import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { FastifyBaseLogger, FastifyInstance, FastifyTypeProviderDefault } from 'fastify';

type Req = http.IncomingMessage;
type Rep = http.ServerResponse<http.IncomingMessage>;
type L = FastifyBaseLogger;
type P = FastifyTypeProviderDefault;

declare const server: [FastifyInstance<http.Server, Req, Rep, L, P>, FastifyInstance<http.Server | http2.Http2Server, Req, Rep, L, P>];
export const s1: FastifyInstance<http.Server | http2.Http2Server, Req, Rep, L, P> = server[0];
export const s2: FastifyInstance<http.Server, Req, Rep, L, P> = server[1];

declare const request: [FastifyInstance<http.Server, Req & { tag: 1 }, Rep, L, P>, FastifyInstance<http.Server, Req, Rep, L, P>];
export const q1: FastifyInstance<http.Server, Req, Rep, L, P> = request[0];
export const q2: FastifyInstance<http.Server, Req & { tag: 1 }, Rep, L, P> = request[1];

declare const reply: [FastifyInstance<http.Server, Req, Rep & { tag: 1 }, L, P>, FastifyInstance<http.Server, Req, Rep, L, P>];
export const r1: FastifyInstance<http.Server, Req, Rep, L, P> = reply[0];
export const r2: FastifyInstance<http.Server, Req, Rep & { tag: 1 }, L, P> = reply[1];

declare const logger: [FastifyInstance<http.Server, Req, Rep, L & { audit(): void }, P>, FastifyInstance<http.Server, Req, Rep, L, P>];
export const l1: FastifyInstance<http.Server, Req, Rep, L, P> = logger[0];
export const l2: FastifyInstance<http.Server, Req, Rep, L & { audit(): void }, P> = logger[1];

declare const provider: [FastifyInstance<http.Server, Req, Rep, L, P & { tag: 1 }>, FastifyInstance<http.Server, Req, Rep, L, P>];
export const p1: FastifyInstance<http.Server, Req, Rep, L, P> = provider[0];
export const p2: FastifyInstance<http.Server, Req, Rep, L, P & { tag: 1 }> = provider[1];
`;

/** Diagnostics of `file` in a fresh program, reading Fastify's declarations patched or as installed. */
function diagnosticsOf(file: string, patched: boolean): string[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    paths: { fastify: [FASTIFY_TYPES] },
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  host.readFile = (f) => {
    const text = read(f);
    return patched && text !== undefined ? withDeclaredVariance(f, text) : text;
  };
  host.getSourceFile = (f, v) => {
    const text = host.readFile(f);
    return text === undefined ? undefined : ts.createSourceFile(f, text, v, true);
  };
  const program = ts.createProgram({ rootNames: [file], options, host });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file)
    .map((d) => `${d.file?.getLineAndCharacterOfPosition(d.start ?? 0).line} TS${d.code}`);
}

describe('declared variance of Fastify types', () => {
  const dir = tempDir('ph-variance-');
  after(() => dir.cleanup());

  test('the annotations apply to the installed Fastify', () => {
    assert.ok(
      declaredVarianceApplies((f) => readFileSync(f, 'utf8')),
      'FastifyInstance changed: update src/compiler/declared-variance.ts',
    );
    assert.deepEqual(Object.keys(DECLARED_VARIANCES), ['FastifyInstance']);
  });

  test('assignments between instantiations have the same outcome with and without them', () => {
    const file = path.join(dir.dir, 'probes.ts');
    writeFileSync(file, PROBES);
    const plain = diagnosticsOf(file, false);
    const annotated = diagnosticsOf(file, true);
    assert.deepEqual(annotated, plain);
    // the probes do tell variances apart: covariant server, the other four invariant (one way passes, both fail)
    const failing = plain.map((d) => Number(d.split(' ')[0]));
    const line = (name: string) => PROBES.split('\n').findIndex((l) => l.startsWith(`export const ${name}:`));
    assert.deepEqual(
      failing,
      ['s2', 'q1', 'q2', 'r1', 'r2', 'l1', 'l2', 'p1', 'p2'].map(line),
      'only s1 (a wider server type) is accepted',
    );
  });

  test('a plugin whose handler uses its request is checked as before: a wrong use is still an error', () => {
    const pluginDir = path.join(dir.dir, 'req');
    mkdirSync(pluginDir);
    const entry = path.join(pluginDir, 'main.ts');
    const source = (body: string) => `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'req', version: '1.0.0', description: '', author: '' }),
  initialize() {},
  registerRoutes(server) {
    server.get<{ Params: { id: string } }>('/req/:id', async (request) => ${body});
  },
  cleanup() {},
}));
`;
    const checker = new TypeChecker();
    writeFileSync(entry, source('({ id: request.params.id, url: request.url })'));
    assert.deepEqual(checker.check(pluginDir, entry), []);
    writeFileSync(entry, source('({ id: request.params.id.toFixed(2) })'));
    const diags = checker.check(pluginDir, entry);
    assert.equal(diags.length, 1);
    assert.match(diags[0]?.message ?? '', /toFixed/);
  });
});
