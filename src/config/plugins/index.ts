/**
 * Per-plugin configuration: the schema a plugin declares, validation of what
 * is stored and of what a version gets, secret references and their
 * redaction, JSON merge patches.
 */

export { noteSecrets, redact, redactJson, redactLogLine } from '../../secrets/redact.js';
export { deepFreeze, isJsonObject, type JsonObject, type JsonValue } from './json.js';
export { mergePatch } from './merge-patch.js';
export {
  assertNoProblems,
  type ConfigProblem,
  DEFAULT_SECRETS_DIR,
  findReferences,
  isReference,
  resolveReferences,
  type SecretEnvironment,
  withSecretsDir,
} from './references.js';
export { type ConfigSchema, checkStoredConfig, finalizeConfig, schemaProblem } from './schema.js';
