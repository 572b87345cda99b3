// A stand-in for the type-check process (test/checker-seam.test.ts): answers every check at once with no
// diagnostics, except for a plugin directory named `hang` (loops for ever) or `oom` (allocates until the heap cap).
import path from 'node:path';

process.on('message', (req) => {
  for (const item of req.items) {
    const name = path.basename(item.dir);
    if (name === 'hang') for (;;);
    if (name === 'oom') {
      const kept = [];
      for (;;) kept.push(new Array(1_000_000).fill(kept.length));
    }
  }
  process.send({ id: req.id, ok: true, results: req.items.map((i) => [path.resolve(i.dir), []]) });
});
process.on('disconnect', () => process.exit(0));
