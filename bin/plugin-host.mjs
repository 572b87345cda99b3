#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader: no build step, same code in dev, tests and production.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
