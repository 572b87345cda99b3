/**
 * A throw-away PostgreSQL 15 cluster for tests that stop and restart the server. Needs root (the cluster is
 * owned by the `postgres` user, run through `runuser`) and the PostgreSQL 15 binaries (`TEST_PG_BIN`,
 * default `/usr/lib/postgresql/15/bin`); `.ci/run` checks both.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { freePort } from './util.js';

const run = promisify(execFile);

const PG_BIN = process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A throw-away PostgreSQL 15 cluster owned by the `postgres` user, on its own
 * port with trust authentication, for tests that stop and restart the server
 * (the shared server on 5432 is used by other test files at the same time).
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ph-pg-'));
    chownSync(dir, uid('postgres'), gid('postgres'));
    const port = await freePort();
    const pg = new PrivatePostgres(dir, port);
    await pg.asPostgres(`${PG_BIN}/initdb`, ['-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    return pg;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private async asPostgres(cmd: string, args: string[]): Promise<string> {
    const { stdout } = await run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: this.dir, timeout: 60_000 });
    return stdout;
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await this.asPostgres(`${PG_BIN}/pg_ctl`, [
      '-D',
      this.dataDir,
      '-l',
      path.join(this.dir, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      opts,
      'start',
    ]);
  }

  /** `fast` disconnects every client (they see admin_shutdown); `immediate` is a crash. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.asPostgres(`${PG_BIN}/pg_ctl`, ['-D', this.dataDir, '-w', '-t', '30', '-m', mode, 'stop']);
  }

  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  /** Runs one statement on a fresh connection (as psql would). */
  async sql<T = Record<string, unknown>>(text: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const sql = postgres(this.url(database), { max: 1, onnotice: () => {}, connect_timeout: 5 });
    try {
      return (await sql.unsafe(text, params as never[])) as unknown as T[];
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  /** Stops the server (if running) and removes its files. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uid(user: string): number {
  return Number(idOf(user, '-u'));
}
function gid(user: string): number {
  return Number(idOf(user, '-g'));
}
function idOf(user: string, flag: string): string {
  return execFileSync('id', [flag, user], { encoding: 'utf8' }).trim();
}
