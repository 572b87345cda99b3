// Worker bootstrap: a worker starts without the parent's module loader, so it registers tsx itself
// before loading the TypeScript sources of the worker's main module.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
