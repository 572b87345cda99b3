import type { Diagnostic } from './typecheck.js';

/** One plugin to check: its directory and its entry file. */
export interface CheckItem {
  dir: string;
  entry: string;
}

/**
 * Where type checks run, behind one interface. The compiler asks for checks and never learns whether they run in
 * this thread (`InProcessChecker`: the command line, tests), in a worker thread (`WorkerTypeChecker`: the server,
 * so that the serving thread never pauses for a check nor holds TypeScript) or in another process; so that the
 * check can move, when it is the faster one, to TypeScript 7's native checker, which TypeScript offers only out
 * of process, without the compiler, the manager or the host changing.
 */
export interface Checker {
  /**
   * Checks `items` in one program and answers the diagnostics of each, by resolved directory (an empty list:
   * clean). `idleMs` shortens the time the checker keeps its resources after this check, when it is the last
   * one answered (a start-up batch announces no more checks the way an edit does). Rejects with a coded
   * `HostError` when the check outran its limits, with an `Error` when the checker itself failed.
   */
  checkMany(items: readonly CheckItem[], idleMs?: number): Promise<Map<string, Diagnostic[]>>;
  /**
   * Loads TypeScript and parses what every check needs ahead of the checks a start is about to ask for, where
   * that costs the serving thread nothing; a checker that would do it on the caller's thread does nothing.
   */
  warmUp(idleMs?: number): void;
  /** True while the checker holds a loaded TypeScript (its worker, its process). */
  readonly running: boolean;
  /** Ends the checker: checks still owed reject, and later ones too. */
  close(): Promise<void>;
}
