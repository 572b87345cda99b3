import path from 'node:path';
import type * as TS from 'typescript';
import { withDeclaredVariance } from './declared-variance.js';
import { FASTIFY_TYPES, SDK_ENTRY, TYPE_ROOTS } from './sdk-path.js';
import { loadTypeScript } from './typescript-module.js';

const typescript = loadTypeScript();
const ts = typescript.ts;

/** Stores TypeScript's compiled code for the next checker; call once a check has run (a no-op after the first call). */
export function saveTypeScriptCache(): void {
  typescript.saveCache();
}

/** The host's package root: the checker's working directory. */
const HOST_ROOT = path.resolve(path.dirname(SDK_ENTRY), '..', '..');

export interface Diagnostic {
  file: string | undefined;
  line: number;
  column: number;
  message: string;
  /** TypeScript's diagnostic number, e.g. 2305 for a missing export. */
  tsCode: number;
  /** True when the diagnostic comes from the host's factory-signature check. */
  factoryCheck: boolean;
}

const CHECK_BASENAME = '__plugin_host_factory_check__.ts';

/** The plugin `warmUp` checks: it uses what plugins use most, the SDK and a Fastify route. */
const WARM_UP_SOURCE = `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'warm-up', version: '0.0.0', description: '', author: '' }),
  initialize() {},
  registerRoutes(server) {
    server.get('/warm-up', async () => ({ ok: true }));
  },
  cleanup() {},
}));
`;

const OPTIONS: TS.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  esModuleInterop: true,
  resolveJsonModule: true,
  isolatedModules: true,
  allowImportingTsExtensions: true,
  // Every plugin file is a module (esbuild bundles it as one), so plugins checked in one program never share globals.
  moduleDetection: ts.ModuleDetectionKind.Force,
  // Declarations come from the host's own dependencies, wherever the plugins directory and the working directory are.
  typeRoots: [TYPE_ROOTS],
  paths: {
    'plugin-host/sdk': [SDK_ENTRY],
    'plugin-host/sdk/*': [SDK_ENTRY],
    // the host provides fastify at run time: plugins are checked against that copy
    fastify: [FASTIFY_TYPES],
  },
};

const identity = (f: string) => f;

/**
 * A TypeScript checker that keeps what does not change between checks in
 * memory: every parsed (and bound) file outside the plugin being checked (the
 * standard library, `@types/node`, Fastify's and the SDK's declarations), the
 * module and type-reference resolutions made from those files, and file-system
 * answers about them. Files inside the plugin directory are re-read on every
 * check; one whose text did not change keeps its parsed `SourceFile`, so the
 * previous program's structure is reused too. That takes a check from ~500 ms
 * for a fresh program to a few tens of milliseconds.
 *
 * Paths outside the plugin directory are assumed not to change while the
 * process runs (they are the host's own dependencies).
 */
export class TypeChecker {
  /** Parsed files, by name. Outside plugins: kept as is; inside: reused while their text is unchanged. */
  private readonly files = new Map<string, TS.SourceFile>();
  private readonly existsCache = new Map<string, boolean>();
  private readonly dirExistsCache = new Map<string, boolean>();
  private readonly realpathCache = new Map<string, string>();
  private readonly textCache = new Map<string, string | undefined>();
  /** Resolutions made from files outside plugins: `containingFile \0 mode \0 name` -> result. */
  private readonly moduleResolutions = new Map<string, TS.ResolvedModuleWithFailedLookupLocations>();
  private readonly typeRefResolutions = new Map<string, TS.ResolvedTypeReferenceDirectiveWithFailedLookupLocations>();
  private readonly moduleCache = ts.createModuleResolutionCache(HOST_ROOT, identity, OPTIONS);
  private readonly typeRefCache = ts.createTypeReferenceDirectiveResolutionCache(
    HOST_ROOT,
    identity,
    OPTIONS,
    this.moduleCache.getPackageJsonInfoCache(),
  );
  private readonly defaultLibLocation = path.dirname(ts.getDefaultLibFilePath(OPTIONS));
  /** The previous program: TypeScript reuses its structure (files, resolutions) where it can. */
  private oldProgram: TS.Program | undefined;

  /**
   * Type-checks the plugin in `dir` whose entry is `entry` and verifies that it
   * exports a `newPlugin` assignable to the SDK's `PluginFactory`.
   */
  check(dir: string, entry: string): Diagnostic[] {
    return this.checkMany([{ dir, entry }]).get(path.resolve(dir)) ?? [];
  }

  /**
   * Checks several plugins in one program: the host's declarations (Fastify's
   * generic route types above all) are resolved once for all of them instead
   * of once per plugin, which is what makes a cold start with many plugins
   * fast. A plugin that reports errors here is checked again on its own, so
   * what it is told never depends on the other plugins in the batch.
   * Returns diagnostics by resolved plugin directory.
   */
  checkMany(items: ReadonlyArray<{ dir: string; entry: string }>): Map<string, Diagnostic[]> {
    const batch = this.checkBatch(items);
    if (items.length > 1) {
      for (const item of items) {
        const dir = path.resolve(item.dir);
        if ((batch.get(dir)?.length ?? 0) > 0) batch.set(dir, this.checkBatch([item]).get(dir) ?? []);
      }
    }
    return batch;
  }

  /**
   * Parses and binds what every check needs (the standard library, `@types/node`, Fastify's and the SDK's
   * declarations) by checking a small plugin that exists only in memory: the first real check then starts
   * from there. Used to overlap that work with the rest of a host's start.
   */
  warmUp(): void {
    const dir = path.join(HOST_ROOT, '.plugin-host-warm-up');
    const entry = path.join(dir, 'main.ts');
    this.checkBatch([{ dir, entry }], new Map([[toTsPath(entry), WARM_UP_SOURCE]]));
  }

  private checkBatch(
    items: ReadonlyArray<{ dir: string; entry: string }>,
    virtual: ReadonlyMap<string, string> = new Map(),
  ): Map<string, Diagnostic[]> {
    const plugins = items.map((item) => {
      const dir = path.resolve(item.dir);
      const entryImport = `./${path.basename(item.entry)}`;
      return {
        dir,
        prefix: `${toTsPath(dir)}/`,
        entry: item.entry,
        entryPath: toTsPath(path.resolve(item.entry)),
        checkFile: toTsPath(path.join(dir, CHECK_BASENAME)),
        checkSource: [
          "import type { PluginFactory } from 'plugin-host/sdk';",
          `import { newPlugin } from '${entryImport}';`,
          'const factory: PluginFactory = newPlugin;',
          'void factory;',
          '',
        ].join('\n'),
      };
    });
    const checkSources = new Map([...plugins.map((p): [string, string] => [p.checkFile, p.checkSource]), ...virtual]);
    const owner = (f: string) => plugins.find((p) => f.startsWith(p.prefix));
    const inPlugin = (f: string) => owner(f) !== undefined;
    // Answers about plugin files are memoized for this check only.
    const local = {
      exists: new Map<string, boolean>(),
      dirExists: new Map<string, boolean>(),
      text: new Map<string, string | undefined>(),
    };
    const memo = <V>(stable: Map<string, V>, volatile: Map<string, V>, key: string, compute: () => V): V => {
      const m = inPlugin(key) ? volatile : stable;
      if (m.has(key)) return m.get(key) as V;
      const v = compute();
      m.set(key, v);
      return v;
    };
    const readFile = (fileName: string): string | undefined => {
      const virtual = checkSources.get(fileName);
      if (virtual !== undefined) return virtual;
      return memo(this.textCache, local.text, fileName, () => {
        const text = ts.sys.readFile(fileName);
        return text === undefined ? undefined : withDeclaredVariance(fileName, text);
      });
    };

    const host: TS.CompilerHost = {
      getSourceFile: (fileName, languageVersionOrOptions, onError) => {
        const text = readFile(fileName);
        if (text === undefined) {
          onError?.(`cannot read ${fileName}`);
          return undefined;
        }
        const cached = this.files.get(fileName);
        // Same text: the same SourceFile (parsed and bound once, and recognized by the old program).
        if (cached !== undefined && cached.text === text) return cached;
        const sf = ts.createSourceFile(fileName, text, languageVersionOrOptions, true);
        this.files.set(fileName, sf);
        return sf;
      },
      getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
      getDefaultLibLocation: () => this.defaultLibLocation,
      writeFile: () => {},
      getCurrentDirectory: () => HOST_ROOT,
      getDirectories: (p) => ts.sys.getDirectories(p),
      getCanonicalFileName: identity,
      useCaseSensitiveFileNames: () => ts.sys.useCaseSensitiveFileNames,
      getNewLine: () => '\n',
      fileExists: (fileName) => {
        if (checkSources.has(fileName)) return true;
        return memo(this.existsCache, local.exists, fileName, () => ts.sys.fileExists(fileName));
      },
      directoryExists: (d) => memo(this.dirExistsCache, local.dirExists, d, () => ts.sys.directoryExists(d)),
      realpath: (p) => {
        if (inPlugin(p)) return ts.sys.realpath?.(p) ?? p;
        let r = this.realpathCache.get(p);
        if (r === undefined) {
          r = ts.sys.realpath?.(p) ?? p;
          this.realpathCache.set(p, r);
        }
        return r;
      },
      readFile,
      getModuleResolutionCache: () => this.moduleCache,
      resolveModuleNameLiterals: (literals, containingFile, redirected, options, containingSourceFile) =>
        literals.map((lit) => {
          const mode = ts.getModeForUsageLocation(containingSourceFile, lit, options);
          if (inPlugin(containingFile)) {
            // Not cached: a plugin's files and dependencies may change between checks.
            return ts.resolveModuleName(lit.text, containingFile, options, host, undefined, redirected, mode);
          }
          const key = `${containingFile}\0${mode ?? ''}\0${lit.text}`;
          let r = this.moduleResolutions.get(key);
          if (r === undefined) {
            r = ts.resolveModuleName(lit.text, containingFile, options, host, this.moduleCache, redirected, mode);
            this.moduleResolutions.set(key, r);
          }
          return r;
        }),
      resolveTypeReferenceDirectiveReferences: (refs, containingFile, redirected, options, containingSourceFile) =>
        refs.map((ref) => {
          const name = typeof ref === 'string' ? ref : ref.fileName.toLowerCase();
          const mode = typeof ref === 'string' ? undefined : ts.getModeForFileReference(ref, containingSourceFile?.impliedNodeFormat);
          if (inPlugin(containingFile)) {
            return ts.resolveTypeReferenceDirective(name, containingFile, options, host, redirected, undefined, mode);
          }
          const key = `${containingFile}\0${mode ?? ''}\0${name}`;
          let r = this.typeRefResolutions.get(key);
          if (r === undefined) {
            r = ts.resolveTypeReferenceDirective(name, containingFile, options, host, redirected, this.typeRefCache, mode);
            this.typeRefResolutions.set(key, r);
          }
          return r;
        }),
    };

    const rootNames = plugins.flatMap((p) => [p.entryPath, p.checkFile]);
    const program = ts.createProgram({ rootNames, options: OPTIONS, host, oldProgram: this.oldProgram });
    this.oldProgram = program;
    const out = new Map<string, Diagnostic[]>(plugins.map((p) => [p.dir, []]));
    const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].filter(
      (d) => d.category === ts.DiagnosticCategory.Error,
    );
    // Only the plugins' own files are checked: the SDK and declarations are the host's, and known good.
    for (const sf of program.getSourceFiles()) {
      const p = owner(sf.fileName);
      if (p === undefined || sf.fileName.includes('/node_modules/')) continue;
      const list = out.get(p.dir) as Diagnostic[];
      for (const d of [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]) {
        if (d.category !== ts.DiagnosticCategory.Error) continue;
        list.push(toDiagnostic(d, p.checkFile, p.entry));
      }
    }
    for (const p of plugins) {
      const list = out.get(p.dir) as Diagnostic[];
      list.unshift(...global.map((d) => toDiagnostic(d, p.checkFile, p.entry)));
    }
    return out;
  }
}

/** TypeScript names files with forward slashes. */
function toTsPath(p: string): string {
  return path.sep === '/' ? p : p.split(path.sep).join('/');
}

function toDiagnostic(d: TS.Diagnostic, checkFile: string, entry: string): Diagnostic {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (d.file !== undefined && d.file.fileName === checkFile) {
    // Point at the plugin's own `newPlugin` declaration, not at the host's check file.
    const pos = locateFactory(entry);
    return { file: entry, line: pos.line, column: pos.column, message: `newPlugin: ${message}`, tsCode: d.code, factoryCheck: true };
  }
  if (d.file === undefined || d.start === undefined) {
    return { file: undefined, line: 0, column: 0, message, tsCode: d.code, factoryCheck: false };
  }
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return { file: d.file.fileName, line: line + 1, column: character + 1, message, tsCode: d.code, factoryCheck: false };
}

function locateFactory(entry: string): { line: number; column: number } {
  const text = ts.sys.readFile(entry) ?? '';
  const m = /export\s+(?:async\s+)?(?:const|let|var|function)\s+newPlugin\b/.exec(text);
  if (m === null) return { line: 1, column: 1 };
  const before = text.slice(0, m.index).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}
