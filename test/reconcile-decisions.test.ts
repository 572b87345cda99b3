import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PluginWithEndpoints, RolloutRow } from '../src/db/index.js';
import { HostError } from '../src/errors/index.js';
import { type Decision, type DecisionInput, decide, type ObservedFacts } from '../src/manager/decide.js';
import { isCanaryNode } from '../src/releases/selection.js';

// The decisions of one reconcile step, from a row and an observed record written as literals: no database,
// no runtime, no clock.

const NODE = 'node-a';
const at = new Date(0);

function row(p: Partial<PluginWithEndpoints> = {}): PluginWithEndpoints {
  return {
    id: 'id-1',
    name: 'greeter',
    description: '',
    version: '1.0.0',
    author: '',
    type: 'dynamic',
    path: 'greeter',
    binaryPath: null,
    sourcePath: null,
    status: 'active',
    artifactHash: 'h1',
    isolation: null,
    pinnedHash: null,
    pinnedVersion: null,
    sourceArchive: null,
    generation: 0,
    createdAt: at,
    updatedAt: at,
    endpoints: [],
    config: { values: {}, revision: 0, updatedAt: null, updatedBy: '' },
    rollout: null,
    ...p,
  };
}

/** A record serving `h1` (generation 0, inline, configuration revision 0) compiled from its source. */
function serving(p: Partial<ObservedFacts> = {}): ObservedFacts {
  return {
    state: 'serving',
    serving: { hash: 'h1', runtime: 'inline' },
    servingGeneration: 0,
    servingConfigRevision: 0,
    servingFrom: 'source',
    lastError: undefined,
    failedFingerprint: undefined,
    ...p,
  };
}

const nothing: ObservedFacts = {
  state: 'unloaded',
  serving: undefined,
  servingGeneration: -1,
  servingConfigRevision: -1,
  servingFrom: undefined,
  lastError: undefined,
  failedFingerprint: undefined,
};

function rollout(nodes: string[]): RolloutRow {
  return {
    id: 'r1',
    pluginId: 'id-1',
    name: 'greeter',
    state: 'canary',
    candidateHash: 'h2',
    candidateVersion: '2.0.0',
    previousHash: 'h1',
    previousVersion: '1.0.0',
    fromSource: false,
    nodes,
    percent: null,
    autoPromote: false,
    bakeMs: 0,
    startedBy: '',
    startedAt: at,
  } as unknown as RolloutRow;
}

const ok = (hash: string, mode = 'inline'): DecisionInput['resolution'] => ({ ok: true, hash, mode });
const failed = (p: { sourceError?: boolean; dbUnavailable?: boolean } = {}): DecisionInput['resolution'] => ({
  ok: false,
  error: new HostError('PH_ERR_COMPILE_SYNTAX', 'broken'),
  sourceError: p.sourceError ?? true,
  dbUnavailable: p.dbUnavailable ?? false,
});

/** Each case: the input, and the fields of the decision that matter (the kind first). */
const cases: Array<[string, Omit<DecisionInput, 'nodeId'>, Partial<Decision> & { kind: Decision['kind'] }]> = [
  ['a name nobody knows is ignored', { row: undefined, observed: undefined }, { kind: 'ignore' }],
  ['a deleted row unloads', { row: undefined, observed: serving() }, { kind: 'unload', reason: 'deleted' }],
  ['an inactive row unloads', { row: row({ status: 'inactive' }), observed: serving() }, { kind: 'unload', reason: 'disabled' }],
  [
    'an inactive row never loaded here still unloads (clears an error)',
    { row: row({ status: 'inactive' }), observed: undefined },
    { kind: 'unload', reason: 'disabled' },
  ],
  [
    'a crashed serving version is taken out first, keyed by what served',
    { row: row(), observed: serving({ serving: { hash: 'h1', runtime: 'worker', failure: new HostError('PH_ERR_PLUGIN_CRASHED', 'x') } }) },
    { kind: 'take-out-crashed', failedKey: 'h1:0:worker:0' },
  ],
  ['an unknown status is refused', { row: row({ status: 'paused' }), observed: undefined }, { kind: 'refuse', failedKey: 'status:paused' }],
  ['an invalid name is refused', { row: row({ name: '../etc' }), observed: undefined }, { kind: 'refuse', failedKey: 'name' }],
  ['an active row is resolved first', { row: row(), observed: undefined }, { kind: 'resolve', target: undefined, mayBeUnchanged: false }],
  ['what this node compiled and serves may be unchanged', { row: row(), observed: serving() }, { kind: 'resolve', mayBeUnchanged: true }],
  ['a new generation is not unchanged', { row: row({ generation: 1 }), observed: serving() }, { kind: 'resolve', mayBeUnchanged: false }],
  [
    'a new artifact hash is not unchanged',
    { row: row({ artifactHash: 'h2' }), observed: serving() },
    { kind: 'resolve', mayBeUnchanged: false },
  ],
  [
    'an uploaded plugin is not checked on disk',
    { row: row({ sourceArchive: 's1' }), observed: serving() },
    { kind: 'resolve', mayBeUnchanged: false },
  ],
  [
    'a served artifact is not checked on disk',
    { row: row(), observed: serving({ servingFrom: 'artifact' }) },
    { kind: 'resolve', mayBeUnchanged: false },
  ],
  [
    'a pinned row resolves its pinned version',
    { row: row({ pinnedHash: 'h0' }), observed: serving() },
    { kind: 'resolve', mayBeUnchanged: false, target: { kind: 'pinned', hash: 'h0' } },
  ],
  ['a new version loads', { row: row(), observed: undefined, resolution: ok('h1') }, { kind: 'load', fingerprint: 'h1:0:inline:0' }],
  [
    'a changed source loads beside what serves',
    { row: row(), observed: serving(), resolution: ok('h2') },
    { kind: 'load', fingerprint: 'h2:0:inline:0' },
  ],
  [
    'a changed runtime loads again',
    { row: row(), observed: serving(), resolution: ok('h1', 'worker') },
    { kind: 'load', fingerprint: 'h1:0:worker:0' },
  ],
  [
    'a reload (generation) loads again',
    { row: row({ generation: 3 }), observed: serving(), resolution: ok('h1') },
    { kind: 'load', fingerprint: 'h1:3:inline:0' },
  ],
  [
    'what serves is what is desired: kept and confirmed',
    { row: row(), observed: serving(), resolution: ok('h1') },
    { kind: 'keep', confirm: true },
  ],
  [
    'kept, not confirmed while reloading',
    { row: row(), observed: serving({ state: 'reloading' }), resolution: ok('h1') },
    { kind: 'keep', confirm: false },
  ],
  [
    'only the configuration changed: reconfigured',
    { row: row({ config: { values: { a: 1 }, revision: 4, updatedAt: null, updatedBy: '' } }), observed: serving(), resolution: ok('h1') },
    { kind: 'reconfigure', fingerprint: 'h1:0:inline:4' },
  ],
  [
    'a configuration that failed already waits',
    {
      row: row({ config: { values: { a: 1 }, revision: 4, updatedAt: null, updatedBy: '' } }),
      observed: serving({ failedFingerprint: 'h1:0:inline:4' }),
      resolution: ok('h1'),
    },
    { kind: 'wait', sameCode: true },
  ],
  [
    'a version that failed already waits for a change',
    {
      row: row(),
      observed: { ...nothing, failedFingerprint: 'h2:0:inline:0', lastError: { code: 'X', message: 'y' } },
      resolution: ok('h2'),
    },
    { kind: 'wait', sameCode: false, canaryFailed: false },
  ],
  [
    'a lost database is retried by the scheduler',
    { row: row(), observed: undefined, resolution: failed({ dbUnavailable: true }) },
    { kind: 'retry-later' },
  ],
  [
    'a broken source with nothing serving falls back to the published artifact',
    { row: row(), observed: undefined, resolution: failed() },
    { kind: 'fall-back' },
  ],
  [
    'a broken source while serving is recorded, the old version stays',
    { row: row(), observed: serving(), resolution: failed() },
    { kind: 'fail-source' },
  ],
  [
    'a broken source with no artifact published is recorded',
    { row: row({ artifactHash: null }), observed: undefined, resolution: failed() },
    { kind: 'fail-source' },
  ],
  [
    'an error that is not the source is not a fall-back',
    { row: row(), observed: undefined, resolution: failed({ sourceError: false }) },
    { kind: 'fail-source' },
  ],
  [
    'a pinned version that does not resolve is recorded',
    { row: row({ pinnedHash: 'h0', generation: 2 }), observed: undefined, resolution: failed() },
    { kind: 'fail-release', failedKey: 'release:pinned:h0:2' },
  ],
];

describe('reconcile decisions', () => {
  for (const [name, input, want] of cases) {
    test(name, () => {
      const got = decide({ nodeId: NODE, ...input });
      for (const [k, v] of Object.entries(want)) {
        assert.deepEqual((got as Record<string, unknown>)[k], v, `${k} of ${JSON.stringify(got)}`);
      }
    });
  }

  test('a canary node resolves the candidate, another node the previous version', () => {
    const r = rollout([NODE]);
    assert.equal(isCanaryNode(r, NODE), true);
    const canary = decide({ nodeId: NODE, row: row({ rollout: r }), observed: serving() });
    assert.equal(canary.kind === 'resolve' && canary.target?.kind, 'canary');
    assert.equal(canary.kind === 'resolve' && canary.target?.hash, 'h2');
    const baseline = decide({ nodeId: 'node-b', row: row({ rollout: r }), observed: serving() });
    assert.equal(baseline.kind === 'resolve' && baseline.target?.kind, 'baseline');
    assert.equal(baseline.kind === 'resolve' && baseline.target?.hash, 'h1');
  });

  test('a candidate known to fail here fails a new rollout too', () => {
    const d = decide({
      nodeId: NODE,
      row: row({ rollout: rollout([NODE]) }),
      observed: { ...nothing, failedFingerprint: 'h2:0:inline:0', lastError: { code: 'PH_ERR_INIT_FAILED', message: 'x' } },
      resolution: ok('h2'),
    });
    assert.deepEqual(d.kind === 'wait' && [d.sameCode, d.canaryFailed], [false, true]);
  });

  test('a canary whose candidate does not resolve fails its release', () => {
    const d = decide({ nodeId: NODE, row: row({ rollout: rollout([NODE]) }), observed: undefined, resolution: failed() });
    assert.equal(d.kind, 'fail-release');
    assert.equal(d.kind === 'fail-release' && d.failedKey, 'release:canary:h2:0');
  });
});
