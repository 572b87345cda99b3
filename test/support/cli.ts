/** Runs the `plugin-host` command as a child process, with an environment free of settings a developer may have exported. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { requireFreshDist } from './dist.js';
import { ROOT } from './util.js';

export const BIN = path.join(ROOT, 'bin', 'plugin-host.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI child: this process's, without settings a developer may have exported. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  // NODE_TEST_CONTEXT would make a nested `node --test` skip its files
  for (const k of [
    'DATABASE_URL',
    'ADMIN_TOKEN',
    'DATA_DIR',
    'PLUGINS_DIR',
    'ARTIFACTS_DIR',
    'WATCH',
    'PORT',
    'ADMIN_PORT',
    'PLUGIN_HOST_URL',
    'NODE_TEST_CONTEXT',
  ])
    delete env[k];
  return { ...env, ...extra };
}

/** Runs `node bin/plugin-host.mjs ARGS` as a child process and collects its exit code and output. */
export function cli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<CliResult> {
  requireFreshDist();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: cleanEnv(env), timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code as number) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
