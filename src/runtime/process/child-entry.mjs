// Plugin process bootstrap from the TypeScript sources: the process is started with tsx's loader
// (`--import tsx`), so the child's TypeScript modules load as they do in a worker.
await import('./child.ts');
