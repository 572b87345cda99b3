/**
 * The host's vocabulary: the rules about names, hashes and states that every
 * subsystem shares. Each rule is written here once; the database layer, the
 * loader, discovery, the HTTP routes and the CLI import it.
 */
export { ARTIFACT_HASH_PATTERN, assertArtifactHash, isArtifactHash } from './artifact-hash.js';
export { backoffMs } from './backoff.js';
export { DEFAULT_ENDPOINT_TYPE, type EndpointInput, endpointKey, endpointRecord } from './endpoint.js';
export { HOST_PATH_PREFIXES } from './host-prefixes.js';
export { assertPluginName, isValidPluginName, PLUGIN_NAME_PATTERN } from './plugin-name.js';
export { ISOLATION_MODES, type IsolationMode, PLUGIN_STATES, PLUGIN_STATUSES, type PluginState, type PluginStatus } from './states.js';
