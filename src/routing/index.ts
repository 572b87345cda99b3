export { Dispatcher } from './dispatcher.js';
export { HostPaths } from './host-paths.js';
export { type RouteEntry, RouteTable, routeEntries } from './route-table.js';
export { type UpgradeListener, upgradeListener } from './upgrade.js';
