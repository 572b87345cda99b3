/**
 * Writers of desired state (the admin API, the CLI, discovery, static
 * plugins, watch mode) and the proof every new version passes before one of
 * them writes it.
 */
export { resolvePluginDirectory } from './paths.js';
export { PluginAdmin, type PluginAdminOptions, type ReloadResult } from './plugin-admin.js';
export type { ConfigChange, ConfigState } from './plugin-config.js';
export { compileAndPublish, type Proven, prove, publishedFields } from './publish.js';
export type { DiscoveryError } from './registration.js';
export { readServerInfo, removeServerInfo, SERVER_INFO_FILE, type ServerInfo, writeServerInfo } from './server-info.js';
