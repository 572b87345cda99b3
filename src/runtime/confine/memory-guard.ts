/**
 * Memory a plugin holds outside its JavaScript heap (Buffers, ArrayBuffers)
 * counted against its cap, inside the confined runtime itself. V8's heap limit
 * does not see external memory, so a plugin holding gigabytes of Buffers would
 * grow the host's process unchecked: here each large Buffer allocation and
 * each heartbeat compare heap plus external memory with the cap, and the
 * runtime ends itself (its supervisor restarts it) the moment it is past.
 */

/** Allocations below this size are checked at the next heartbeat only (checking each would cost every request). */
const CHECKED_ALLOCATION_BYTES = 64 * 1024;

export interface MemoryNow {
  heapKb: number;
  externalKb: number;
}

export function memoryNow(): MemoryNow {
  const m = process.memoryUsage();
  return { heapKb: Math.round(m.heapUsed / 1024), externalKb: Math.round(m.external / 1024) };
}

/**
 * Wraps `Buffer.alloc`, `Buffer.allocUnsafe` and `Buffer.allocUnsafeSlow` so
 * that a large allocation that would put the runtime past `capBytes` calls
 * `over` before the memory is taken (`over` ends the runtime and does not return).
 */
export function guardBufferAllocations(capBytes: number, over: (now: MemoryNow) => never): void {
  const check = (size: unknown) => {
    if (typeof size !== 'number' || size < CHECKED_ALLOCATION_BYTES) return;
    const now = memoryNow();
    if ((now.heapKb + now.externalKb) * 1024 + size > capBytes) over(now);
  };
  const B = Buffer as unknown as Record<string, (...a: unknown[]) => Buffer>;
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow']) {
    const original = B[name] as (...a: unknown[]) => Buffer;
    Object.defineProperty(Buffer, name, {
      value: function guarded(this: unknown, ...args: unknown[]) {
        check(args[0]);
        return original.apply(Buffer, args);
      },
      writable: false,
      configurable: false,
    });
  }
}

/** True when heap plus external memory is past `capBytes`. */
export function overCap(now: MemoryNow, capBytes: number): boolean {
  return (now.heapKb + now.externalKb) * 1024 > capBytes;
}
