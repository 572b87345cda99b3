#!/usr/bin/env node
// Runs the compiled host (dist/, built by `npm run build`, which `npm install` of a checkout runs through `prepare`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/bundle/plugin-host.js', import.meta.url);
if (!existsSync(main)) {
  console.error('plugin-host: dist/ is missing; run `npm run build` in the plugin-host checkout');
  process.exit(1);
}
await import(main.href);
