import type { PluginAdmin } from '../admin/index.js';
import type { RecordedError } from '../errors/index.js';
import type { PluginManager } from '../manager/index.js';

/** One error as this node saw it; the same error seen again in a row counts up instead of adding a line. */
export interface HistoryEntry {
  code: string;
  message: string;
  /** When it was first seen. */
  at: string;
  /** When it was last seen (equals `at` when seen once). */
  last_at: string;
  /** The version that failed, when known. */
  version: string | null;
  count: number;
}

/**
 * The errors this node has seen per plugin since it started: the manager keeps only the last
 * one (`last_error`), which a later success clears. Fed by the manager's `change` event;
 * bounded per plugin, and forgotten with the plugin when it is removed.
 */
export class ErrorHistory {
  private readonly byPlugin = new Map<string, HistoryEntry[]>();
  private readonly onChange: (name: string) => void;
  private readonly offDiscovery: () => void;

  constructor(
    private readonly manager: PluginManager,
    private readonly admin: Pick<PluginAdmin, 'discoveryErrors' | 'onChange'>,
    private readonly perPlugin = 50,
  ) {
    this.onChange = (name) => this.observe(name);
    manager.on('change', this.onChange);
    this.offDiscovery = admin.onChange(this.onChange);
  }

  /** Newest first. */
  of(name: string): HistoryEntry[] {
    return [...(this.byPlugin.get(name) ?? [])].reverse();
  }

  close(): void {
    this.manager.off('change', this.onChange);
    this.offDiscovery();
  }

  private observe(name: string): void {
    const snap = this.manager.snapshot(name);
    const unregistered = this.admin.discoveryErrors.get(name);
    if (snap === undefined && unregistered === undefined) {
      // removed everywhere on this node: nothing left to show the history for
      this.byPlugin.delete(name);
      return;
    }
    if (snap?.last_error) this.add(name, snap.last_error, snap.last_error.version);
    if (unregistered !== undefined) this.add(name, unregistered, null);
  }

  private add(name: string, e: RecordedError, version: string | null): void {
    let list = this.byPlugin.get(name);
    if (list === undefined) {
      list = [];
      this.byPlugin.set(name, list);
    }
    const last = list[list.length - 1];
    if (last !== undefined && (last.at === e.at || last.last_at === e.at)) return; // the same record, reported again
    if (last !== undefined && last.code === e.code && last.message === e.message && last.version === version) {
      last.last_at = e.at;
      last.count++;
      return;
    }
    list.push({ code: e.code, message: e.message, at: e.at, last_at: e.at, version, count: 1 });
    if (list.length > this.perPlugin) list.splice(0, list.length - this.perPlugin);
  }
}
