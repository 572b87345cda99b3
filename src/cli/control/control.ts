import type { VersionEntry } from '../../model/answers.js';
import type { IsolationMode, PluginStatus } from '../../model/index.js';

/**
 * What the CLI's data commands act through: a running server's admin API (`HttpControl`, with `--server`
 * or when a server holds the embedded database) or the database itself (`LocalControl`). Each command is
 * written once against this; the two answer the same questions, the server adding its own view of the
 * plugin (`state`, `lastError`).
 */
export interface Control {
  /** `server`: a server's admin API answered (and reports its own state of the plugin); `database`: written directly. */
  readonly where: 'server' | 'database';
  list(status: PluginStatus | undefined): Promise<Listing>;
  setStatus(name: string, status: PluginStatus): Promise<PluginChange>;
  reload(name: string): Promise<PluginChange>;
  remove(name: string): Promise<PluginChange>;
  setIsolation(name: string, mode: IsolationMode | null): Promise<PluginChange>;
  register(dir: string, status: PluginStatus): Promise<PluginChange>;
  config(name: string, op: ConfigOp): Promise<Record<string, unknown>>;
  versions(name: string): Promise<{ answer: VersionEntry[]; pinnedHash: string | null | undefined }>;
  rollback(name: string, ref: { version: string } | { hash: string }): Promise<PluginChange>;
  close(): Promise<void>;
}

/** A configuration read, or a write of the whole (`put`) or of a merge patch (`patch`). */
export type ConfigOp = { kind: 'get' } | { kind: 'put'; values: unknown } | { kind: 'patch'; patch: unknown };

/** A plugin after a change, as the control answered it. */
export interface PluginChange {
  /** The answer as printed with `--json`. */
  answer: Record<string, unknown>;
  name: string;
  status?: string | undefined;
  version?: string | undefined;
  generation?: number | undefined;
  artifactHash?: string | null | undefined;
  isolation?: string | null | undefined;
  pinned?: string | null | undefined;
  pinnedHash?: string | null | undefined;
  /** Whether anything was written (the database answers it; a server answers its state instead). */
  changed?: boolean | undefined;
  /** Whether the source was compiled here (a reload on the database). */
  recompiled?: boolean | undefined;
  /** The server's state of the plugin (through a server only). */
  state?: string | undefined;
  lastError?: { code?: string; message?: string } | null | undefined;
}

export interface ListedPlugin {
  name: string;
  status: string | undefined;
  version: string | undefined;
  generation: number | undefined;
  artifactHash: string | null | undefined;
  /** Through a server: its state of the plugin and its last error's code. */
  state?: string | undefined;
  lastErrorCode?: string | undefined;
  /** On the database: how many live nodes serve it, of those that report it, and their error codes. */
  nodes?: { serving: number; total: number; errors: string[] } | undefined;
}

export interface Listing {
  answer: unknown[];
  plugins: ListedPlugin[];
}
