import type { FastifyBaseLogger } from 'fastify';
import type { PluginWithEndpoints } from '../db/index.js';
import { describeError, isHostError } from '../errors/index.js';
import { Lanes } from '../lanes/index.js';
import { backoffMs } from '../model/index.js';

export interface SchedulerOptions {
  /** One reconcile run of one plugin; `prefetched` is the row a full reconcile read for it, when still current. */
  run(name: string, prefetched: PluginWithEndpoints | undefined): Promise<void>;
  /** Every row of desired state. */
  list(): Promise<PluginWithEndpoints[]>;
  /** Plugins this node holds state for: a full reconcile visits them too (a deleted row must unload). */
  known(): Iterable<string>;
  /** Called once, with the rows of the first full reconcile, before its runs start. */
  beforeFirstRound(rows: readonly PluginWithEndpoints[]): Promise<void>;
  /** Called once the first full reconcile's runs are done; the round ends when it settles. */
  afterFirstRound(): Promise<void>;
  log: FastifyBaseLogger;
}

/**
 * When reconcile runs happen, and in what order: one lane per plugin (one run
 * in flight, bursts collapsed), full reconciles that hand each lane the row
 * they already read, the registration order of the very first round, and
 * retries with capped backoff of runs cut short by a lost database.
 */
export class Scheduler {
  private readonly lanes: Lanes;
  /**
   * When a run was last asked for, per plugin, on a counter shared by all: tells whether a row read by a
   * full reconcile may be older than what a lane has seen since. Kept only while a full reconcile reads
   * or the lane runs, so names that come and go (a NOTIFY naming no plugin) leave nothing behind.
   */
  private readonly requestedAt = new Map<string, number>();
  private epoch = 0;
  private listsInFlight = 0;
  /** Rows read by a full reconcile, handed to the lane run it starts. */
  private readonly prefetched = new Map<string, PluginWithEndpoints>();
  /** Plugins whose run was cut short by a lost database connection ('' = the full reconcile), retried with backoff. */
  private readonly postponed = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** Retries since a run last read the database: the back-off's attempt number. */
  private retries = 0;
  /**
   * During the first full reconcile, new versions enter the route table in registration order
   * (`created_at`, then name): of two plugins claiming one route, the earlier registered keeps it,
   * whichever loaded faster. `done` settles when that plugin's first run has finished.
   */
  private admission: { order: string[]; done: Map<string, Promise<void>> } | undefined;
  /** The first full reconcile, once started; later ones wait for it. */
  private firstRound: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {
    this.lanes = new Lanes(
      async (name) => {
        const pre = this.prefetched.get(name);
        this.prefetched.delete(name);
        await this.o.run(name, pre);
        this.retries = 0;
      },
      (name, err) => {
        if (isHostError(err, 'PH_ERR_DB_UNAVAILABLE')) {
          this.o.log.warn({ plugin: name, err: describeError(err) }, `reconcile of ${name} postponed: database unavailable`);
          this.retryLater(name);
        } else {
          this.o.log.error({ plugin: name, err }, `reconcile of ${name} failed: ${describeError(err)}`);
        }
      },
    );
  }

  /** Reconciles one plugin; resolves when a run that started after this call is done. */
  reconcile(name: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.requestedAt.set(name, ++this.epoch);
    const done = this.lanes.request(name);
    void done.then(() => this.forgetIdle(name));
    return done;
  }

  private forgetIdle(name: string): void {
    if (this.listsInFlight === 0 && !this.lanes.running(name)) this.requestedAt.delete(name);
  }

  /** Reconciles every plugin known to the database or to this node. At start, after (re)LISTEN and periodically. */
  async reconcileAll(): Promise<void> {
    if (this.stopped) return;
    const listedAt = this.epoch;
    let rows: PluginWithEndpoints[];
    this.listsInFlight++;
    try {
      rows = await this.o.list();
      this.retries = 0;
    } catch (err) {
      this.o.log.warn({ err: describeError(err) }, 'full reconcile postponed: database unavailable');
      this.retryLater('');
      return;
    } finally {
      this.listsInFlight--;
    }
    // The rows just read save each lane its own read, unless a run for that plugin was asked for since the
    // list was requested (it may have seen a newer row) or is under way: then the lane reads for itself.
    for (const r of rows) {
      if ((this.requestedAt.get(r.name) ?? 0) <= listedAt && !this.lanes.running(r.name)) this.prefetched.set(r.name, r);
    }
    if (this.listsInFlight === 0) for (const name of [...this.requestedAt.keys()]) this.forgetIdle(name);
    const names = new Set([...rows.map((r) => r.name), ...this.o.known()]);
    // A full reconcile that read its rows while the first round is under way (the follower's resync at
    // start races the host's own) waits for it: running its lanes at once would load plugins before
    // the admission order exists, and the faster of two plugins claiming a route would win it.
    if (this.firstRound !== undefined) {
      await this.firstRound.catch(() => undefined);
      await Promise.all([...names].map((n) => this.reconcile(n)));
      return;
    }
    this.firstRound = this.firstReconcile(rows, names);
    await this.firstRound;
  }

  private async firstReconcile(rows: readonly PluginWithEndpoints[], names: ReadonlySet<string>): Promise<void> {
    try {
      await this.o.beforeFirstRound(rows);
    } catch (err) {
      // only work ahead: the runs read and write for themselves without it
      this.o.log.warn({ err: describeError(err) }, 'preparing the first round failed');
    }
    const order = [...rows]
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((r) => r.name);
    const done = new Map<string, Promise<void>>();
    this.admission = { order, done };
    for (const n of order) done.set(n, this.reconcile(n));
    try {
      await Promise.all([...names].map((n) => done.get(n) ?? this.reconcile(n)));
    } finally {
      this.admission = undefined;
      await this.o.afterFirstRound();
    }
  }

  /** During the first full reconcile: waits until every plugin registered before `name` was admitted or refused. */
  async admitted(name: string): Promise<void> {
    const a = this.admission;
    if (a === undefined) return;
    const i = a.order.indexOf(name);
    if (i <= 0) return;
    await Promise.all(a.order.slice(0, i).map((n) => a.done.get(n)));
  }

  /**
   * A notification is consumed once: if the run it woke failed on the database
   * connection (a killed backend, a restart), nothing else would wake it before
   * the next full reconcile. Retry it, with capped backoff, until a run reads the database.
   */
  private retryLater(name: string): void {
    if (this.stopped) return;
    this.postponed.add(name);
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        const names = [...this.postponed];
        this.postponed.clear();
        if (names.includes('')) void this.reconcileAll();
        else for (const n of names) void this.reconcile(n);
      },
      backoffMs(this.retries++, { firstMs: 250, maxMs: 30_000 }),
    );
    this.retryTimer.unref();
  }

  /** Plugins the scheduler holds anything for (a request time, a prefetched row, a postponed run, a lane). */
  remembered(): number {
    return new Set([...this.requestedAt.keys(), ...this.prefetched.keys(), ...this.postponed]).size + this.lanes.active;
  }

  running(name: string): boolean {
    return this.lanes.running(name);
  }

  /** Waits for every lane to be idle. */
  idle(): Promise<void> {
    return this.lanes.idle();
  }

  /** No new run starts; waits for those in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.lanes.idle();
  }
}
