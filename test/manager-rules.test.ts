/**
 * The manager's rules, through its seams: a fake runtime and a fake compiler
 * stand in for plugin code and TypeScript, the database is a real in-memory
 * PGlite. Each rule runs in milliseconds, without a server or a plugin build.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ARTIFACT_FORMAT, ArtifactStore, artifactHeader } from '../src/artifacts/index.js';
import type { CompileResult, PluginCompiler } from '../src/compiler/index.js';
import type { JsonObject } from '../src/config/plugins/index.js';
import { type Database, openDatabase, PluginRepository } from '../src/db/index.js';
import { HostError } from '../src/errors/index.js';
import { createLogger } from '../src/logger.js';
import { PluginManager } from '../src/manager/index.js';
import { HOST_PATH_PREFIXES } from '../src/model/index.js';
import { Dispatcher, HostPaths } from '../src/routing/index.js';
import { InflightVersion, type LoadedVersion, type LoadRequest, type PluginRuntime, Runtimes } from '../src/runtime/index.js';
import type { PluginMetadata } from '../src/sdk/index.js';
import { tempDir } from './support/util.js';

const log = createLogger('silent');

/** A plugin version as the fake compiler builds it: its hash names its routes and version. */
interface FakeBuild {
  version: string;
  routes: string[];
  /** Set: the source does not compile (a source error, as a syntax error would be). */
  broken?: boolean;
  /** The configSchema its metadata declares. */
  configSchema?: Record<string, unknown>;
  /** Set: the version has an onConfigChange. */
  inPlace?: boolean;
}

class FakeCompiler implements PluginCompiler {
  /** Plugin directory name -> what its source builds now. */
  readonly sources = new Map<string, FakeBuild>();
  compiles = 0;

  constructor(private readonly artifactsDir: string) {}

  async compile(dir: string): Promise<CompileResult> {
    this.compiles++;
    const name = path.basename(dir);
    const b = this.sources.get(name);
    if (b === undefined || b.broken) throw new HostError('PH_ERR_COMPILE_SYNTAX', `${name}/main.ts:1:1: Unexpected "}"`);
    const hash = hashOf(name, b);
    return {
      hash,
      path: path.join(this.artifactsDir, `${hash}.cjs`),
      bundle: bundleOf(hash, b),
      format: ARTIFACT_FORMAT,
      entry: path.join(dir, 'main.ts'),
      built: true,
      timings: { hashMs: 0, typecheckMs: 0, bundleMs: 0 },
    };
  }

  async prepare(): Promise<void> {}
}

/** A fake build as an artifact: the real header (so the artifact store accepts it), then the build as JSON. */
function bundleOf(hash: string, b: FakeBuild): string {
  return artifactHeader(ARTIFACT_FORMAT, hash) + JSON.stringify(b);
}

function hashOf(name: string, b: FakeBuild): string {
  return `${name}-${b.version}-${b.routes.join('_')}${b.inPlace ? '-inplace' : ''}`.replace(/[^A-Za-z0-9_-]/g, '');
}

class FakeVersion extends InflightVersion implements LoadedVersion {
  readonly loadedAt = new Date();
  readonly runtime = 'inline';
  readonly log = log;
  readonly handle = () => {};
  unloaded = false;
  /** Configurations handed over in place, in order. */
  readonly reconfigured: JsonObject[] = [];
  /** Set: the next onConfigChange throws. */
  refuseNext = false;

  constructor(
    readonly name: string,
    readonly hash: string,
    readonly metadata: PluginMetadata,
    readonly routes: Array<{ method: string; url: string }>,
    public config: JsonObject,
    private readonly inPlace: boolean,
  ) {
    super();
  }

  async reconfigure(config: JsonObject): Promise<boolean> {
    if (!this.inPlace) return false;
    if (this.refuseNext) throw new HostError('PH_ERR_HOOK_FAILED', `${this.name}: onConfigChange() threw: no`);
    this.reconfigured.push(config);
    this.config = config;
    return true;
  }

  get version(): string {
    return this.metadata.version;
  }

  async health() {
    return { ok: true };
  }

  async unload() {
    this.unloaded = true;
    return {};
  }

  sharedSchemas(): unknown[] {
    return [];
  }
}

/** Loads what the fake compiler built (the bundle is its JSON), or fails on demand. */
class FakeRuntime implements PluginRuntime {
  readonly kind = 'fake';
  readonly loads: FakeVersion[] = [];
  /** Hashes whose load fails (as a throwing `initialize` would). */
  readonly failing = new Set<string>();

  async load(req: LoadRequest): Promise<LoadedVersion> {
    if (this.failing.has(req.hash)) throw new HostError('PH_ERR_HOOK_FAILED', `${req.name}: initialize() threw: boom`);
    const b = this.build(req);
    const v = new FakeVersion(
      req.name,
      req.hash,
      this.metadataOf(req.name, b),
      b.routes.map((url) => ({ method: 'GET', url })),
      req.config,
      b.inPlace === true,
    );
    this.loads.push(v);
    return v;
  }

  async trial(req: LoadRequest): Promise<PluginMetadata> {
    this.trials++;
    return this.metadataOf(req.name, this.build(req));
  }

  trials = 0;

  private metadataOf(name: string, b: FakeBuild): PluginMetadata {
    return {
      name,
      version: b.version,
      description: '',
      author: '',
      endpoints: [],
      ...(b.configSchema === undefined ? {} : { configSchema: b.configSchema }),
    };
  }

  private build(req: LoadRequest): FakeBuild {
    if (req.code.kind !== 'bundle') throw new Error('static plugins are not used here');
    return JSON.parse(req.code.bundle.slice(req.code.bundle.indexOf('\n') + 1)) as FakeBuild;
  }

  loadsOf(name: string): FakeVersion[] {
    return this.loads.filter((v) => v.name === name);
  }

  async close(): Promise<void> {}
}

/** A compiler whose type checks finish when the test says so: `compileAhead` hands out a pending `checked`. */
class GatedCompiler extends FakeCompiler {
  readonly gates: Array<{ pass(): void; fail(err: Error): void }> = [];

  async compileAhead(dir: string): Promise<{ result: CompileResult; checked: Promise<void> }> {
    const result = await this.compile(dir);
    let gate: { pass(): void; fail(err: Error): void } | undefined;
    const checked = new Promise<void>((pass, fail) => {
      gate = { pass, fail };
    });
    this.gates.push(gate as { pass(): void; fail(err: Error): void });
    return { result, checked };
  }
}

/** Resolves once `cond()` holds, checked between turns of the event loop. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('manager rules (fake runtime and compiler, in-memory PGlite)', () => {
  let db: Database;
  let repo: PluginRepository;
  let dirs: ReturnType<typeof tempDir>;
  let compiler: FakeCompiler;
  let runtime: FakeRuntime;
  let dispatcher: Dispatcher;
  let manager: PluginManager;
  let artifacts: ArtifactStore;

  before(async () => {
    db = await openDatabase({ databaseUrl: undefined, dataDir: undefined });
    repo = new PluginRepository(db.orm);
  });
  after(async () => {
    await db.close();
  });

  beforeEach(async () => {
    await db.query('DELETE FROM plugins'); // configurations cascade
    await db.query('DELETE FROM plugin_artifacts');
    dirs = tempDir('ph-rules-');
    mkdirSync(path.join(dirs.dir, 'plugins'));
    compiler = new FakeCompiler(path.join(dirs.dir, 'artifacts'));
    runtime = new FakeRuntime();
    dispatcher = new Dispatcher();
    dispatcher.setHostPaths(HostPaths.fromRoutes(HOST_PATH_PREFIXES.map((s) => `/${s}`)));
    artifacts = new ArtifactStore(path.join(dirs.dir, 'artifacts'), repo);
    manager = newManager();
  });

  function newManager(): PluginManager {
    return new PluginManager({
      environment: { API_KEY: 'key-on-this-node' },
      nodeId: 'rules',
      pluginsDir: path.join(dirs.dir, 'plugins'),
      hookTimeoutMs: 1000,
      drainTimeoutMs: 1000,
      repo,
      compiler,
      artifacts,
      // the fake stands in for both modes; rows name none, so every plugin runs "inline"
      runtimes: new Runtimes({ inline: runtime, worker: runtime }, 'inline'),
      dispatcher,
      log,
    });
  }

  /** A plugin directory whose source builds `b`, and its row. */
  async function register(name: string, b: FakeBuild, extra: { artifactHash?: string } = {}): Promise<void> {
    const dir = path.join(dirs.dir, 'plugins', name);
    mkdirSync(dir, { recursive: true });
    compiler.sources.set(name, b);
    await repo.insertIfAbsent({ name, type: 'dynamic', path: dir, sourcePath: dir, status: 'active', ...extra }, []);
  }

  test('an unchanged fingerprint is not reloaded; a generation bump is', async () => {
    await register('a', { version: '1.0.0', routes: ['/a'] });
    await manager.reconcile('a');
    await manager.reconcile('a');
    await manager.reconcileAll();
    assert.equal(runtime.loadsOf('a').length, 1, 'same hash and generation: loaded once');
    await repo.bumpGeneration('a');
    await manager.reconcile('a');
    assert.equal(runtime.loadsOf('a').length, 2, 'a new generation reloads');
    assert.equal(runtime.loadsOf('a')[0]?.unloaded, true, 'the replaced version was unloaded');
    await manager.stop();
  });

  test('a reload loads beside what serves while its source is checked; only a passed check swaps it in', async () => {
    const gated = new GatedCompiler(path.join(dirs.dir, 'artifacts'));
    compiler = gated;
    manager = newManager();
    await register('a', { version: '1.0.0', routes: ['/a'] });
    await manager.reconcile('a');
    assert.equal(gated.gates.length, 0, 'a first load (nothing serves yet) waits for its check inside the compile');
    const v1 = manager.serving('a');

    gated.sources.set('a', { version: '2.0.0', routes: ['/a'] });
    await repo.bumpGeneration('a');
    const failing = manager.reconcile('a');
    await until(() => runtime.loadsOf('a').length === 2);
    assert.equal(dispatcher.current.find('GET', '/a'), v1, 'loaded while checked, not swapped in');
    gated.gates[0]?.fail(new HostError('PH_ERR_COMPILE_TYPE', "a/main.ts:3:7: Type 'string' is not assignable to type 'number'."));
    await failing;
    const snap = manager.snapshot('a');
    assert.equal(manager.serving('a'), v1, 'a failed check replaces nothing');
    assert.equal(dispatcher.current.find('GET', '/a'), v1);
    assert.equal(snap?.last_error?.code, 'PH_ERR_COMPILE_TYPE');
    assert.equal(snap?.last_error?.version, '2.0.0');
    assert.equal(runtime.loadsOf('a')[1]?.unloaded, true, 'the refused version was unloaded (its cleanup ran)');

    gated.sources.set('a', { version: '3.0.0', routes: ['/a'] });
    await repo.bumpGeneration('a');
    const passing = manager.reconcile('a');
    await until(() => runtime.loadsOf('a').length === 3);
    assert.equal(dispatcher.current.find('GET', '/a'), v1, 'still the old version while the check runs');
    gated.gates[1]?.pass();
    await passing;
    assert.equal(manager.serving('a')?.version, '3.0.0');
    assert.equal(dispatcher.current.find('GET', '/a'), manager.serving('a'));
    assert.equal(manager.snapshot('a')?.last_error, null);
    await manager.stop();
  });

  test('a failed reload keeps the old version serving and records the error; the same failure is not retried', async () => {
    await register('a', { version: '1.0.0', routes: ['/a'] });
    await manager.reconcile('a');
    const v1 = manager.serving('a');
    const next = { version: '2.0.0', routes: ['/a'] };
    compiler.sources.set('a', next);
    runtime.failing.add(hashOf('a', next));
    await repo.bumpGeneration('a');
    await manager.reconcile('a');
    const snap = manager.snapshot('a');
    assert.equal(snap?.state, 'serving');
    assert.equal(manager.serving('a'), v1, 'the old version still serves');
    assert.equal(dispatcher.current.find('GET', '/a'), v1);
    assert.equal(snap?.last_error?.code, 'PH_ERR_HOOK_FAILED');
    assert.equal(snap?.last_error?.version, '2.0.0', 'the failure is shown under the version that failed');
    const loadsBefore = runtime.loads.length;
    await manager.reconcile('a');
    assert.equal(runtime.loads.length, loadsBefore, 'the same desired state is not tried again');
    await manager.stop();
  });

  test('after a restart, a source that no longer builds falls back to the published artifact', async () => {
    const v1 = { version: '1.0.0', routes: ['/a'] };
    const hash = hashOf('a', v1);
    await artifacts.publish({ hash, pluginName: 'a', version: '1.0.0', format: ARTIFACT_FORMAT, bundle: bundleOf(hash, v1) });
    await register('a', { ...v1, broken: true }, { artifactHash: hash });
    await manager.reconcile('a');
    const snap = manager.snapshot('a');
    assert.equal(snap?.state, 'serving', JSON.stringify(snap));
    assert.equal(snap?.serving?.from, 'artifact');
    assert.equal(snap?.serving?.hash, hash);
    assert.equal(snap?.last_error?.code, 'PH_ERR_COMPILE_SYNTAX', 'the source error is shown beside the serving version');
    await manager.stop();
  });

  test('a plugin refused for a route conflict is retried when the owner leaves', async () => {
    await register('a', { version: '1.0.0', routes: ['/same'] });
    await register('b', { version: '1.0.0', routes: ['/same', '/b'] });
    await manager.reconcile('a');
    await manager.reconcile('b');
    assert.equal(manager.snapshot('b')?.state, 'error');
    assert.equal(manager.snapshot('b')?.last_error?.code, 'PH_ERR_ROUTE_CONFLICT');
    assert.equal(dispatcher.current.find('GET', '/b'), undefined, 'nothing of the refused version is reachable');
    await repo.delete('a');
    await manager.reconcile('a');
    await manager.idle();
    assert.equal(manager.snapshot('b')?.state, 'serving', 'b was retried once a left');
    assert.equal(dispatcher.current.find('GET', '/same')?.name, 'b');
    assert.equal(manager.snapshot('a'), undefined, 'a deleted row leaves nothing behind');
    await manager.stop();
  });

  test('a name with no row and no state here costs one read and leaves nothing behind', async () => {
    const writes = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM plugin_node_state');
    await Promise.all(Array.from({ length: 50 }, (_, i) => manager.reconcile(`ghost-${i}`)));
    await manager.idle();
    assert.deepEqual(manager.snapshots(), []);
    assert.deepEqual(await db.query<{ n: number }>('SELECT count(*)::int AS n FROM plugin_node_state'), writes);
    assert.equal(runtime.loads.length, 0);
    await manager.stop();
  });

  const SCHEMA = {
    type: 'object',
    properties: { greeting: { type: 'string', default: 'hello' }, key: { type: 'string' } },
    additionalProperties: false,
  };

  test('a configuration revision is part of the desired state: the same code reloads with it, nothing recompiled', async () => {
    await register('a', { version: '1.0.0', routes: ['/a'], configSchema: SCHEMA });
    await manager.reconcile('a');
    assert.deepEqual(runtime.loadsOf('a')[0]?.config, { greeting: 'hello' }, 'defaults applied with nothing stored');
    const compiles = compiler.compiles;
    await repo.configs.put('a', { greeting: 'hi', key: { $env: 'API_KEY' } }, 'test');
    await manager.reconcile('a');
    const loads = runtime.loadsOf('a');
    assert.equal(loads.length, 2, 'reloaded');
    assert.equal(loads[1]?.hash, loads[0]?.hash, 'the same artifact');
    assert.deepEqual(loads[1]?.config, { greeting: 'hi', key: 'key-on-this-node' }, 'references resolved from this node');
    assert.equal(loads[0]?.unloaded, true, 'the replaced instance was retired');
    assert.ok(compiler.compiles - compiles <= 1, 'the unchanged source maps to the compiled artifact');
    const trials = runtime.trials;
    await manager.reconcile('a');
    await manager.reconcileAll();
    assert.equal(runtime.loadsOf('a').length, 2, 'an unchanged revision is not reloaded');
    assert.equal(runtime.trials, trials, 'the schema is read once per version');
    await manager.stop();
  });

  test('a configuration the version refuses, or a secret this node lacks, keeps the old configuration serving; not retried until it changes', async () => {
    await register('a', { version: '1.0.0', routes: ['/a'], configSchema: SCHEMA });
    await repo.configs.put('a', { greeting: 'one' }, 'test');
    await manager.reconcile('a');
    const serving = manager.serving('a');
    const servingRevision = manager.snapshot('a')?.serving?.config_revision;

    await repo.configs.put('a', { greeting: 'two', key: { $env: 'NOT_ON_THIS_NODE' } }, 'test');
    await manager.reconcile('a');
    let snap = manager.snapshot('a');
    assert.equal(manager.serving('a'), serving, 'the old instance serves');
    assert.equal(snap?.serving?.config_revision, servingRevision);
    assert.equal(snap?.last_error?.code, 'PH_ERR_PLUGIN_CONFIG_SECRET');
    assert.match(snap?.last_error?.message ?? '', /NOT_ON_THIS_NODE/);
    const loads = runtime.loads.length;
    await manager.reconcile('a');
    assert.equal(runtime.loads.length, loads, 'the same desired state is not tried again');

    await db.query(`UPDATE plugin_configs SET config = '{"greeting": 3}' WHERE plugin_name = 'a'`);
    await manager.reconcile('a');
    snap = manager.snapshot('a');
    assert.equal(snap?.last_error?.code, 'PH_ERR_PLUGIN_CONFIG_INVALID');
    assert.match(snap?.last_error?.message ?? '', /\/greeting must be string/);
    assert.equal(manager.serving('a'), serving);

    await repo.configs.put('a', { greeting: 'three' }, 'test');
    await manager.reconcile('a');
    assert.notEqual(manager.serving('a'), serving, 'a valid configuration loads');
    assert.equal(manager.snapshot('a')?.last_error, null);
    await manager.stop();
  });

  test('a version with onConfigChange takes a configuration in place; a refusal keeps the previous one', async () => {
    await register('a', { version: '1.0.0', routes: ['/a'], configSchema: SCHEMA, inPlace: true });
    await manager.reconcile('a');
    const v = manager.serving('a') as FakeVersion;
    const stored = await repo.configs.put('a', { greeting: 'in place' }, 'test');
    await manager.reconcile('a');
    assert.equal(manager.serving('a'), v, 'the same instance serves');
    assert.equal(runtime.loadsOf('a').length, 1, 'nothing loaded');
    assert.deepEqual(v.reconfigured, [{ greeting: 'in place' }]);
    assert.equal(stored.outcome, 'written');
    assert.equal(manager.snapshot('a')?.serving?.config_revision, stored.outcome === 'written' ? stored.stored.revision : -1);

    v.refuseNext = true;
    await repo.configs.put('a', { greeting: 'refused' }, 'test');
    await manager.reconcile('a');
    assert.equal(manager.serving('a'), v);
    assert.deepEqual(v.config, { greeting: 'in place' }, 'the previous configuration stays');
    assert.equal(manager.snapshot('a')?.last_error?.code, 'PH_ERR_HOOK_FAILED');
    await manager.stop();
  });

  test('a new version whose schema refuses the stored configuration is refused; the old version keeps serving', async () => {
    await register('a', { version: '1.0.0', routes: ['/a'], configSchema: SCHEMA });
    await repo.configs.put('a', { greeting: 'hi', key: 'literal' }, 'test');
    await manager.reconcile('a');
    const v1 = manager.serving('a');
    compiler.sources.set('a', {
      version: '2.0.0',
      routes: ['/a'],
      configSchema: { type: 'object', properties: { greeting: { type: 'string' } }, additionalProperties: false },
    });
    await repo.bumpGeneration('a');
    await manager.reconcile('a');
    const snap = manager.snapshot('a');
    assert.equal(manager.serving('a'), v1);
    assert.equal(snap?.last_error?.code, 'PH_ERR_PLUGIN_CONFIG_INVALID');
    assert.equal(snap?.last_error?.version, '2.0.0');
    assert.match(snap?.last_error?.message ?? '', /\/key is not allowed/);
    await manager.stop();
  });
});
