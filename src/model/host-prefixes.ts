/**
 * First path segments of the host's own routes. The host owns every path
 * under them, whatever the method; a plugin route that could match one is
 * refused. The running host derives the same set from the routes it really
 * registered (a test keeps this list equal to it); this list serves where no
 * host runs (the scaffold, the docs).
 */
export const HOST_PATH_PREFIXES: readonly string[] = [
  'plugins',
  'healthz',
  'readyz',
  'metrics',
  'openapi.json',
  'docs',
  'console',
  'events',
  'cluster',
  'tokens',
  'audit',
];
