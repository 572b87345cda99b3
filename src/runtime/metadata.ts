import semver from 'semver';
import { type ConfigSchema, schemaProblem } from '../config/plugins/index.js';
import { HostError } from '../errors/index.js';
import { DEFAULT_ENDPOINT_TYPE } from '../model/index.js';
import type { PluginEndpoint, PluginMetadata } from '../sdk/index.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/** Validates what `getMetadata()` returned; `expectedName` is the directory / row name. */
export function validateMetadata(raw: unknown, expectedName: string): PluginMetadata {
  const fail = (why: string): never => {
    throw new HostError('PH_ERR_METADATA_INVALID', `${expectedName}: getMetadata() ${why}`, { details: { hook: 'getMetadata' } });
  };
  if (raw === null || typeof raw !== 'object') fail('must return an object');
  const m = raw as Record<string, unknown>;
  if (typeof m.name !== 'string' || m.name.trim() === '') fail('returned an empty name');
  if (m.name !== expectedName) fail(`returned name "${String(m.name)}", expected "${expectedName}" (the directory name)`);
  if (typeof m.version !== 'string' || semver.valid(m.version) === null) fail(`returned an invalid semver version "${String(m.version)}"`);
  const endpoints: PluginEndpoint[] = [];
  if (m.endpoints !== undefined) {
    if (!Array.isArray(m.endpoints)) fail('returned endpoints that are not an array');
    for (const e of m.endpoints as unknown[]) {
      const ep = e as Record<string, unknown>;
      if (ep === null || typeof ep !== 'object' || typeof ep.path !== 'string' || !ep.path.startsWith('/')) {
        fail(`returned an endpoint without a path starting with "/": ${JSON.stringify(e)}`);
      }
      const method = String(ep.method ?? 'GET').toUpperCase();
      if (!METHODS.has(method)) fail(`returned an endpoint with unknown method "${method}"`);
      endpoints.push({
        method: method as PluginEndpoint['method'],
        path: ep.path as string,
        handler: typeof ep.handler === 'string' ? ep.handler : '',
        type: typeof ep.type === 'string' ? ep.type : DEFAULT_ENDPOINT_TYPE,
      });
    }
  }
  let configSchema: ConfigSchema | undefined;
  if (m.configSchema !== undefined) {
    const problem = schemaProblem(m.configSchema);
    if (problem !== undefined) fail(`returned a configSchema that ${problem}`);
    // a copy, as JSON: the schema is shown by the API and must not change under it
    configSchema = JSON.parse(JSON.stringify(m.configSchema)) as ConfigSchema;
  }
  return {
    name: m.name as string,
    version: m.version as string,
    description: typeof m.description === 'string' ? m.description : '',
    author: typeof m.author === 'string' ? m.author : '',
    endpoints,
    ...(configSchema === undefined ? {} : { configSchema }),
  };
}
