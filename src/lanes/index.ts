/**
 * One lane per key: at most one job in flight per key; requests arriving while
 * a job runs collapse into a single re-run (the job re-reads the latest
 * desired state, so running it once more is enough). Every job is caught: a
 * failing run never stalls the lane. Different keys run in parallel.
 */
export class Lanes {
  private readonly lanes = new Map<string, { pending: boolean; done: Promise<void> }>();

  constructor(
    private readonly job: (key: string) => Promise<void>,
    private readonly onError: (key: string, err: unknown) => void,
  ) {}

  /** Schedules a run for `key`; resolves once a run that started after this call has finished. */
  request(key: string): Promise<void> {
    const lane = this.lanes.get(key);
    if (lane !== undefined) {
      lane.pending = true;
      return lane.done;
    }
    const state = { pending: false, done: Promise.resolve() };
    state.done = (async () => {
      await Promise.resolve();
      do {
        state.pending = false;
        try {
          await this.job(key);
        } catch (err) {
          this.onError(key, err);
        }
      } while (state.pending);
      this.lanes.delete(key);
    })();
    this.lanes.set(key, state);
    return state.done;
  }

  /** True while `key` has a job in flight or scheduled. */
  running(key: string): boolean {
    return this.lanes.has(key);
  }

  /** Number of lanes with a job in flight. */
  get active(): number {
    return this.lanes.size;
  }

  /** Waits until every lane is idle. */
  async idle(): Promise<void> {
    while (this.lanes.size > 0) await Promise.all([...this.lanes.values()].map((l) => l.done));
  }
}
