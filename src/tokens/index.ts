/** Scoped tokens, the route-scope table, the control plane's guard and the audit trail. */

export { type TokenSettings, tokenSettings } from '../config/index.js';
export { AccessControl, type AccessControlOptions, BOOTSTRAP, type Principal, TOKEN_CHANNEL } from './access.js';
export { type AuditEntry, AuditLog, type AuditQuery, type AuditRecord } from './audit.js';
export { guard, principalOf } from './guard.js';
export { isWrite, needOf, ROUTE_SCOPES, type RouteScope, routeKey } from './route-scopes.js';
export { type TokenRoutesOptions, tokenRoutes } from './routes.js';
export { allows, describeNeed, type Need, parseScopes, pluginsFor, type Scope } from './scopes.js';
export { hashTokenSecret, newTokenSecret, TOKEN_PREFIX } from './secret.js';
export { type TokenInfo, TokenStore } from './store.js';
