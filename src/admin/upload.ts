import path from 'node:path';
import type { PluginRow } from '../db/index.js';
import { HostError, isHostError } from '../errors/index.js';
import { assertPluginName, endpointRecord } from '../model/index.js';
import { SourceArchives } from '../uploads/index.js';
import { compileAndPublish, type ProveDeps, publishedFields } from './publish.js';
import type { RegistrationOptions } from './registration.js';

export interface UploadResult {
  row: PluginRow;
  /** True for a plugin the database did not know (201), false for a new version of one it did (200). */
  created: boolean;
}

/**
 * Installs a plugin from a `tar.gz` of its directory: checks the archive
 * (hostile ones are refused before a byte is written), unpacks it into a fresh
 * host-owned directory, compiles and trial-loads it like a discovered plugin,
 * and only then stores the archive and the artifact and writes the row, which
 * every node follows. The archive and the artifact are named by their content
 * and by nothing until the row names them, so they are written ahead; the row
 * and its endpoints are written in one transaction (one statement for a new
 * plugin). On any failure the unpacked copy is removed and nothing is stored
 * or registered.
 */
export async function uploadPlugin(
  o: RegistrationOptions & { sources: SourceArchives },
  name: string,
  archive: Buffer,
): Promise<UploadResult> {
  assertPluginName(name);
  const entries = o.sources.read(archive);
  const hash = SourceArchives.hashOf(archive);
  const existing = await o.repo.getByName(name);
  const dir = await o.sources.unpack(name, hash, entries);
  const runtime = o.runtimes.get(o.runtimes.modeOf(existing ?? { name, type: 'dynamic', isolation: null, sourceArchive: hash }));
  const deps: ProveDeps & RegistrationOptions = { ...o, runtime };
  let proven: Awaited<ReturnType<typeof compileAndPublish>>;
  try {
    proven = await compileAndPublish(deps, name, dir, 'upload');
  } catch (err) {
    await o.sources.discard(hash);
    throw relocate(err, dir);
  }
  await o.sources.store(name, hash, archive);
  const uploaded = { type: 'dynamic', path: null, sourcePath: null, sourceArchive: hash, ...publishedFields(proven) } as const;
  const endpoints = (proven.metadata.endpoints ?? []).map(endpointRecord);
  if (existing === undefined) {
    const res = await o.repo.insertIfAbsent({ name, status: 'active', ...uploaded }, endpoints);
    if (res.row === undefined) throw new HostError('PH_ERR_INTERNAL', `${name}: the row could not be written`);
    if (res.created) {
      o.log.info({ plugin: name, version: proven.metadata.version, hash: proven.artifact.hash }, `plugin ${name} uploaded`);
      return { row: res.row, created: true };
    }
  }
  // a new version of a known plugin (or one registered meanwhile): the row follows the upload
  const row = await o.repo.updateWithEndpoints(name, uploaded, endpoints);
  if (row === undefined) throw new HostError('PH_ERR_PLUGIN_NOT_FOUND', `plugin "${name}" was removed during the upload`);
  o.log.info({ plugin: name, version: proven.metadata.version, hash: proven.artifact.hash }, `plugin ${name} uploaded (new version)`);
  return { row, created: false };
}

/** Compile and load errors name files in the host's unpack directory: shown relative to the plugin (`NAME/main.ts:3:7`). */
function relocate(err: unknown, dir: string): unknown {
  if (!isHostError(err)) return err;
  const base = `${path.dirname(dir)}${path.sep}`;
  if (!err.message.includes(base) && JSON.stringify(err.details ?? {}).indexOf(base) < 0) return err;
  const fix = (s: string) => s.split(base).join('');
  const details = err.details === undefined ? undefined : (JSON.parse(fix(JSON.stringify(err.details))) as Record<string, unknown>);
  return new HostError(err.code, fix(err.message), { cause: err, ...(details === undefined ? {} : { details }) });
}
