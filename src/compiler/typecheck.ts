import path from 'node:path';
import ts from 'typescript';
import { SDK_ENTRY } from './sdk-path.js';

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

const OPTIONS: ts.CompilerOptions = {
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
  paths: { 'plugin-host/sdk': [SDK_ENTRY], 'plugin-host/sdk/*': [SDK_ENTRY] },
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
  private readonly files = new Map<string, ts.SourceFile>();
  private readonly existsCache = new Map<string, boolean>();
  private readonly dirExistsCache = new Map<string, boolean>();
  private readonly realpathCache = new Map<string, string>();
  private readonly textCache = new Map<string, string | undefined>();
  /** Resolutions made from files outside plugins: `containingFile \0 mode \0 name` -> result. */
  private readonly moduleResolutions = new Map<string, ts.ResolvedModuleWithFailedLookupLocations>();
  private readonly typeRefResolutions = new Map<string, ts.ResolvedTypeReferenceDirectiveWithFailedLookupLocations>();
  private readonly moduleCache = ts.createModuleResolutionCache(process.cwd(), identity, OPTIONS);
  private readonly typeRefCache = ts.createTypeReferenceDirectiveResolutionCache(
    process.cwd(),
    identity,
    OPTIONS,
    this.moduleCache.getPackageJsonInfoCache(),
  );
  private readonly defaultLibLocation = path.dirname(ts.getDefaultLibFilePath(OPTIONS));
  /** The previous program: TypeScript reuses its structure (files, resolutions) where it can. */
  private oldProgram: ts.Program | undefined;

  /**
   * Type-checks the plugin in `dir` whose entry is `entry` and verifies that it
   * exports a `newPlugin` assignable to the SDK's `PluginFactory`.
   */
  check(dir: string, entry: string): Diagnostic[] {
    const pluginDir = toTsPath(path.resolve(dir)) + '/';
    const checkFile = toTsPath(path.join(path.resolve(dir), CHECK_BASENAME));
    const entryPath = toTsPath(path.resolve(entry));
    const entryImport = `./${path.basename(entry)}`;
    const checkSource = [
      "import type { PluginFactory } from 'plugin-host/sdk';",
      `import { newPlugin } from '${entryImport}';`,
      'const factory: PluginFactory = newPlugin;',
      'void factory;',
      '',
    ].join('\n');
    const inPlugin = (f: string) => f.startsWith(pluginDir);
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
      if (fileName === checkFile) return checkSource;
      return memo(this.textCache, local.text, fileName, () => ts.sys.readFile(fileName));
    };

    const host: ts.CompilerHost = {
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
      getCurrentDirectory: () => process.cwd(),
      getDirectories: (p) => ts.sys.getDirectories(p),
      getCanonicalFileName: identity,
      useCaseSensitiveFileNames: () => ts.sys.useCaseSensitiveFileNames,
      getNewLine: () => '\n',
      fileExists: (fileName) => {
        if (fileName === checkFile) return true;
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

    const program = ts.createProgram({ rootNames: [entryPath, checkFile], options: OPTIONS, host, oldProgram: this.oldProgram });
    this.oldProgram = program;
    // Only the plugin's own files are checked: the SDK and declarations are the host's, and known good.
    const own = program.getSourceFiles().filter((sf) => inPlugin(sf.fileName) && !sf.fileName.includes('/node_modules/'));
    const diags: ts.Diagnostic[] = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
    for (const sf of own) diags.push(...program.getSyntacticDiagnostics(sf));
    for (const sf of own) diags.push(...program.getSemanticDiagnostics(sf));
    return diags
      .filter((d) => d.category === ts.DiagnosticCategory.Error)
      .filter((d) => d.file === undefined || inPlugin(d.file.fileName))
      .map((d) => toDiagnostic(d, checkFile, entry));
  }
}

/** TypeScript names files with forward slashes. */
function toTsPath(p: string): string {
  return path.sep === '/' ? p : p.split(path.sep).join('/');
}

function toDiagnostic(d: ts.Diagnostic, checkFile: string, entry: string): Diagnostic {
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
