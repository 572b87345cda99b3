// Temporary artifact files a killed writer left: collected at start whatever their age, while another live
// writer's file stays (a CLI writing into the same directory).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ArtifactFiles } from '../src/artifacts/index.js';

const HASH = '06bfcc5507f3dab8ba716d13d52ecac4';

test('leftovers of dead writers and of this pid are removed; a live writer keeps its file; artifacts stay', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ph-leftovers-'));
  try {
    const files = new ArtifactFiles(dir);
    // a pid that certainly ended: a child that already exited
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const live = process.ppid; // the test runner: alive, not us
    const now = Date.now();
    const names = {
      dead: `${HASH}.cjs.${dead}.${now}.tmp`,
      mine: `${HASH}.cjs.${process.pid}.${now}.tmp`,
      live: `${HASH}.cjs.${live}.${now}.tmp`,
      artifact: `${HASH}.cjs`,
    };
    for (const n of Object.values(names)) writeFileSync(path.join(dir, n), 'x');

    const removed = files.removeLeftovers().sort();
    assert.deepEqual(removed, [names.dead, names.mine].sort());
    assert.deepEqual(readdirSync(dir).sort(), [names.artifact, names.live].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
