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

/**
 * A TypeScript checker that keeps every file outside the plugin being checked
 * (the standard library, `@types/node`, Fastify's and the SDK's declarations)
 * parsed in memory across calls. That takes a check from ~500 ms for a fresh
 * program to a few tens of milliseconds.
 */
export class TypeChecker {
  private readonly sharedFiles = new Map<string, ts.SourceFile>();
  private readonly baseHost = ts.createCompilerHost(OPTIONS, true);
  private readonly existsCache = new Map<string, boolean>();
  private readonly moduleCache = ts.createModuleResolutionCache(process.cwd(), (f) => f, OPTIONS);

  /**
   * Type-checks the plugin in `dir` whose entry is `entry` and verifies that it
   * exports a `newPlugin` assignable to the SDK's `PluginFactory`.
   */
  check(dir: string, entry: string): Diagnostic[] {
    const pluginDir = path.resolve(dir) + path.sep;
    const checkFile = path.join(dir, CHECK_BASENAME);
    const entryImport = `./${path.basename(entry)}`;
    const checkSource = [
      "import type { PluginFactory } from 'plugin-host/sdk';",
      `import { newPlugin } from '${entryImport}';`,
      'const factory: PluginFactory = newPlugin;',
      'void factory;',
      '',
    ].join('\n');
    const inPlugin = (f: string) => path.resolve(f).startsWith(pluginDir) && !f.includes(`${path.sep}node_modules${path.sep}`);

    const host: ts.CompilerHost = {
      ...this.baseHost,
      getSourceFile: (fileName, languageVersion, onError) => {
        if (fileName === checkFile) return ts.createSourceFile(fileName, checkSource, languageVersion, true);
        if (inPlugin(fileName)) return this.baseHost.getSourceFile(fileName, languageVersion, onError);
        let sf = this.sharedFiles.get(fileName);
        if (sf === undefined) {
          sf = this.baseHost.getSourceFile(fileName, languageVersion, onError);
          if (sf !== undefined) this.sharedFiles.set(fileName, sf);
        }
        return sf;
      },
      fileExists: (fileName) => {
        if (fileName === checkFile) return true;
        if (inPlugin(fileName)) return this.baseHost.fileExists(fileName);
        let e = this.existsCache.get(fileName);
        if (e === undefined) {
          e = this.baseHost.fileExists(fileName);
          this.existsCache.set(fileName, e);
        }
        return e;
      },
      readFile: (fileName) => (fileName === checkFile ? checkSource : this.baseHost.readFile(fileName)),
      writeFile: () => {},
    };
    host.resolveModuleNameLiterals = (literals, containingFile, redirected, options) =>
      literals.map((lit) => {
        // Plugin-local resolutions are not cached: the plugin's files change between checks.
        const cache = inPlugin(containingFile) ? undefined : this.moduleCache;
        return ts.resolveModuleName(lit.text, containingFile, options, host, cache, redirected);
      });

    const program = ts.createProgram({ rootNames: [entry, checkFile], options: OPTIONS, host });
    const diags = [
      ...program.getSyntacticDiagnostics(),
      ...program.getOptionsDiagnostics(),
      ...program.getGlobalDiagnostics(),
      ...program.getSemanticDiagnostics(),
    ];
    return diags
      .filter((d) => d.category === ts.DiagnosticCategory.Error)
      .filter((d) => d.file === undefined || inPlugin(d.file.fileName) || d.file.fileName === checkFile)
      .map((d) => toDiagnostic(d, checkFile, entry));
  }
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
