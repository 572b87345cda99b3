/** The host's own HTTP routes (plugins API, admin, health, metrics, OpenAPI), problem answers and hardening. */
export { adminRoutes } from './admin-routes.js';
export { type Authenticate, type Caller, tokenAuthentication } from './auth.js';
export { clusterRoutes } from './cluster-routes.js';
export { eventsRoutes } from './events-routes.js';
export { clientErrorHandler, frameworkErrors, installHttpHardening } from './hardening.js';
export { healthRoutes } from './health-routes.js';
export { LazySchemaCompilers } from './lazy-compilers.js';
export { HostMetrics, metricsRoutes } from './metrics.js';
export { type DescribedRoute, OpenApiDocument, openapiRoutes } from './openapi.js';
export { pluginView, unregisteredView } from './plugin-view.js';
export { pluginsRoutes } from './plugins-routes.js';
export { hostErrorHandler, sendProblem } from './problem.js';
export { releaseReadRoutes } from './release-routes.js';
