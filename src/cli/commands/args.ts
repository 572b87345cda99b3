import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type ConfigOverrides, loadConfig } from '../../config/index.js';
import { describeError, HostError } from '../../errors/index.js';
import type { Control } from '../control/control.js';

// What every command shares: its options, its output (text or --json), and the control it acts through.

export const EXIT_USAGE = 2;

export function out(json: boolean, value: unknown, text: string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text);
}

/** Prints an error as `plugin-host: CODE: message`, then each diagnostic as `file:line:column: message`. */
export function printError(err: unknown): void {
  const code = err instanceof HostError ? err.code : 'PH_ERR_INTERNAL';
  console.error(`plugin-host: ${code}: ${describeError(err)}`);
}

export function parse(
  argv: string[],
  extra: Record<string, { type: 'string' | 'boolean' }> = {},
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'database-url': { type: 'string' },
        'data-dir': { type: 'string' },
        'plugins-dir': { type: 'string' },
        'artifacts-dir': { type: 'string' },
        'log-level': { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...extra,
      },
    });
  } catch (err) {
    throw new HostError('PH_ERR_USAGE', describeError(err));
  }
}

function overridesOf(values: Record<string, unknown>): ConfigOverrides {
  return {
    databaseUrl: values['database-url'] as string | undefined,
    dataDir: values['data-dir'] as string | undefined,
    pluginsDir: values['plugins-dir'] as string | undefined,
    artifactsDir: values['artifacts-dir'] as string | undefined,
    logLevel: values['log-level'] as string | undefined,
  };
}

export function short(hash: unknown): string {
  return typeof hash === 'string' ? hash.slice(0, 12) : '-';
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Runs `fn` with the control the options point to (see `openControl`), closed after. */
export async function withControl<T>(values: Record<string, unknown>, fn: (c: Control) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env, overridesOf(values));
  const token = (values.token as string | undefined) ?? config.adminToken;
  // loaded only by the commands that act on plugins: the database and the compiler are not small
  const { openControl } = await import('../target.js');
  const c = await openControl(config, token);
  try {
    return await fn(c);
  } finally {
    await c.close().catch(() => {});
  }
}

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw new HostError('PH_ERR_USAGE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HostError('PH_ERR_USAGE', `${file} is not JSON: ${describeError(err)}`);
  }
}
