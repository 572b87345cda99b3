// Worker bootstrap: the worker starts without the parent's loader flags, so it registers tsx itself.
import { register } from 'tsx/esm/api';

register();
await import('./typecheck-worker.ts');
