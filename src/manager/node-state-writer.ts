import type { NodeStateInput, PluginRepository } from '../db/index.js';

/**
 * Writes this node's observed state to `plugin_node_state`, one statement for
 * many plugins. One write is in flight at a time; what plugins publish
 * meanwhile waits for it and goes in the next, keeping only the latest entry
 * per plugin (a later state replaces an earlier one, a removal replaces both).
 * A node starting a hundred plugins writes a handful of statements instead of
 * a hundred, and the order of one plugin's states is kept: its next entry is
 * never written before the one in flight.
 */
export class NodeStateWriter {
  private readonly pending = new Map<string, NodeStateInput | 'remove'>();
  private flushing: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private held = false;

  constructor(
    private readonly nodeId: string,
    private readonly repo: PluginRepository,
  ) {}

  /**
   * Resolves once a write that contains this state (or a later one of the same plugin) is done; rejects as
   * it does. While writes are held, resolves at once: the state is written when they are released.
   */
  record(state: NodeStateInput): Promise<void> {
    this.pending.set(state.pluginName, state);
    return this.held ? Promise.resolve() : this.schedule();
  }

  remove(pluginName: string): Promise<void> {
    this.pending.set(pluginName, 'remove');
    return this.held ? Promise.resolve() : this.schedule();
  }

  /**
   * Keeps what is recorded from now on until `release()`: a node's first round of loads, which nobody
   * reads before the node reports ready, is written in one statement when it ends.
   */
  hold(): void {
    this.held = true;
  }

  /** Writes what was kept while held (rejects as that write does). */
  release(): Promise<void> {
    this.held = false;
    return this.pending.size === 0 ? Promise.resolve() : this.schedule();
  }

  private schedule(): Promise<void> {
    if (this.next !== undefined) return this.next;
    const after = this.flushing ?? Promise.resolve();
    const run = after
      .catch(() => undefined)
      .then(async () => {
        this.next = undefined;
        this.flushing = run;
        try {
          await this.write();
        } finally {
          if (this.flushing === run) this.flushing = undefined;
        }
      });
    this.next = run;
    return run;
  }

  private async write(): Promise<void> {
    const batch = [...this.pending];
    this.pending.clear();
    const states: NodeStateInput[] = [];
    const removed: string[] = [];
    for (const [name, entry] of batch) {
      if (entry === 'remove') removed.push(name);
      else states.push(entry);
    }
    await Promise.all([this.repo.nodes.recordStates(states), this.repo.nodes.removeStates(this.nodeId, removed)]);
  }
}
