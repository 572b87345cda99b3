/** One piece of a running host: started in the declared order, closed in the reverse one. */
export interface Part {
  /** Named in the log when its close fails. */
  readonly name: string;
  /** Undoes what starting it did; never throws on a second call. */
  close(): unknown;
}

/**
 * The parts a host started, in order. Closing runs them last-in, first-out by
 * construction: a part is added only once it started, so a start that fails
 * half-way closes exactly what it started, and a part started later (which may
 * use an earlier one) is always closed first.
 */
export class Parts {
  private readonly started: Part[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly onCloseError: (part: string, err: unknown) => void) {}

  /** Records a started part (returns its value, to keep a wiring line short). */
  add<T>(name: string, value: T, close: (value: T) => unknown): T {
    if (this.closing !== undefined) {
      // started while the host was closing (a start aborted half-way): undo it at once
      void Promise.resolve()
        .then(() => close(value))
        .catch((err: unknown) => this.onCloseError(name, err));
      return value;
    }
    this.started.push({ name, close: () => close(value) });
    return value;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (let part = this.started.pop(); part !== undefined; part = this.started.pop()) {
        try {
          await part.close();
        } catch (err) {
          this.onCloseError(part.name, err);
        }
      }
    })();
    return this.closing;
  }
}
