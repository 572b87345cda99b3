export { Dispatcher } from './dispatcher.js';
export { type CoreRoute, RESERVED_PREFIXES, type RouteEntry, RouteTable, routeEntries } from './route-table.js';
