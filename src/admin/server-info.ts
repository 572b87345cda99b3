import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A server using the embedded database holds `DATA_DIR` (lock file with its
 * pid). It writes where its control plane listens next to the lock, so the CLI
 * can reach its admin API instead of opening the database itself.
 */
export const SERVER_INFO_FILE = 'plugin-host.server.json';

export interface ServerInfo {
  pid: number;
  /** The control plane (admin API): what the CLI calls. */
  url: string;
  /** The data plane (plugin routes), for information. */
  dataUrl?: string;
  nodeId: string;
  startedAt: string;
}

/** A URL a local client can connect to (a wildcard bind address becomes loopback). */
function reachable(url: string): string {
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

export function writeServerInfo(dataDir: string, info: ServerInfo): void {
  const p = path.join(dataDir, SERVER_INFO_FILE);
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(
    tmp,
    `${JSON.stringify({ ...info, url: reachable(info.url), ...(info.dataUrl === undefined ? {} : { dataUrl: reachable(info.dataUrl) }) })}\n`,
    { mode: 0o600 },
  );
  renameSync(tmp, p);
}

export function readServerInfo(dataDir: string): ServerInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(path.join(dataDir, SERVER_INFO_FILE), 'utf8')) as Partial<ServerInfo>;
    if (typeof v.pid !== 'number' || typeof v.url !== 'string') return undefined;
    const dataUrl = typeof v.dataUrl === 'string' ? { dataUrl: v.dataUrl } : {};
    return { pid: v.pid, url: v.url, ...dataUrl, nodeId: String(v.nodeId ?? ''), startedAt: String(v.startedAt ?? '') };
  } catch {
    return undefined;
  }
}

/** Removes the file if this process wrote it. */
export function removeServerInfo(dataDir: string, pid = process.pid): void {
  if (readServerInfo(dataDir)?.pid === pid) rmSync(path.join(dataDir, SERVER_INFO_FILE), { force: true });
}
