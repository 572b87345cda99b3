import type { CoreRoute } from '../routing/route-table.js';

/**
 * Concrete requests the host answers itself. A plugin route matching any of
 * them would shadow a core route and is refused when the route table is built.
 */
export const CORE_ROUTE_SAMPLES: readonly CoreRoute[] = [
  { method: 'GET', path: '/plugins' },
  { method: 'POST', path: '/plugins' },
  { method: 'GET', path: '/plugins/x' },
  { method: 'DELETE', path: '/plugins/x' },
  { method: 'GET', path: '/plugins/x/health' },
  { method: 'POST', path: '/plugins/x/enable' },
  { method: 'POST', path: '/plugins/x/disable' },
  { method: 'POST', path: '/plugins/x/reload' },
  { method: 'POST', path: '/plugins/x/toggle' },
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/openapi.json' },
  { method: 'GET', path: '/docs' },
  { method: 'GET', path: '/docs/' },
  { method: 'GET', path: '/docs/x' },
  { method: 'GET', path: '/plugins/x/errors' },
  { method: 'GET', path: '/cluster' },
  { method: 'GET', path: '/events' },
  { method: 'GET', path: '/console' },
  { method: 'GET', path: '/console/app.js' },
  { method: 'GET', path: '/console/console.css' },
];
