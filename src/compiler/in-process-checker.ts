import type { Checker, CheckItem } from './checker.js';
import type { Diagnostic, TypeChecker } from './typecheck.js';

/**
 * Checks on the caller's thread: for the command line (`plugin-host build`, `new`) and tests, which have no
 * requests to serve meanwhile. TypeScript is imported on the first check, never before.
 */
export class InProcessChecker implements Checker {
  private checker: Promise<TypeChecker> | undefined;
  private saveCache: (() => void) | undefined;
  private closed = false;

  get running(): boolean {
    return this.checker !== undefined && !this.closed;
  }

  async checkMany(items: readonly CheckItem[]): Promise<Map<string, Diagnostic[]>> {
    if (this.closed) throw new Error('type checker closed');
    this.checker ??= import('./typecheck.js').then((m) => {
      this.saveCache = m.saveTypeScriptCache;
      return new m.TypeChecker();
    });
    const out = (await this.checker).checkMany(items);
    this.saveCache?.(); // once: the code this first check compiled, for the next process
    return out;
  }

  /** Nothing: warming up here would take the caller's thread for a second, for a check that may never come. */
  warmUp(): void {}

  async close(): Promise<void> {
    this.closed = true;
  }
}
