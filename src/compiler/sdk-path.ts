import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the SDK source: plugins are type-checked against it. */
export const SDK_ENTRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'sdk', 'index.ts');
