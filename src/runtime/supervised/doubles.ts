import { Readable, Writable } from 'node:stream';
import { STREAM_WINDOW_BYTES, type WireHeaders, type WireRequest } from './protocol.js';

const noop = () => {};

/**
 * What Fastify reads of a request's socket: the peer address, and listeners it
 * may attach for keep-alive bookkeeping (there is no connection in a worker,
 * so they never fire).
 */
function socketOf(remoteAddress: string | undefined) {
  return { remoteAddress, remotePort: 0, encrypted: false, on: noop, once: noop, removeListener: noop, destroy: noop, setTimeout: noop };
}

/**
 * A forwarded request as Fastify's router expects an `IncomingMessage`: the
 * method, URL and headers the client sent, and its body (read whole by the
 * serving thread) as a readable stream.
 */
export class WorkerRequest extends Readable {
  readonly method: string;
  url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: string[] = [];
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly complete = true;
  aborted = false;
  readonly socket: ReturnType<typeof socketOf>;

  constructor(msg: WireRequest) {
    super();
    this.method = msg.method;
    this.url = msg.url;
    this.headers = msg.headers;
    this.socket = socketOf(msg.remoteAddress);
    if (msg.body !== undefined && msg.body.byteLength > 0)
      this.push(Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength));
    this.push(null);
  }

  get connection() {
    return this.socket;
  }

  override _read(): void {}
}

export interface ResponseSink {
  /** The whole answer in one go (the usual case). */
  whole(status: number, headers: WireHeaders, body: Uint8Array | string | undefined): void;
  head(status: number, headers: WireHeaders): void;
  chunk(data: Uint8Array | string): void;
  end(): void;
}

function sizeOf(chunk: Buffer | string): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
}

/**
 * An answer as Fastify writes a `ServerResponse`: status, headers, then the
 * body written once (`write` + `end`, the usual case, sent as one message) or
 * piped as a stream (sent as it comes, chunk by chunk, once the first write
 * has waited one turn of the event loop for more, or a window's worth came at
 * once). A stream is sent at most `STREAM_WINDOW_BYTES` ahead of what the
 * client took (`acknowledge`): past it, the write's callback waits, so the
 * plugin's stream is paused, and a stream that never yields cannot hold its
 * runtime's event loop.
 */
export class WorkerResponse extends Writable {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  readonly sendDate = false;
  private headers: WireHeaders = {};
  private buffered: Array<Buffer | string> = [];
  private bufferedBytes = 0;
  private streaming = false;
  private flushScheduled = false;
  /** Bytes sent and not yet acknowledged by the serving thread. */
  private unacked = 0;
  /** The callback of the write that filled the window, called once the client took enough. */
  private waiting: (() => void) | undefined;

  constructor(private readonly sink: ResponseSink) {
    super({ decodeStrings: false });
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    this.headers[name.toLowerCase()] = value as string | number | string[];
    return this;
  }

  getHeader(name: string): string | number | string[] | undefined {
    return this.headers[name.toLowerCase()];
  }

  getHeaders(): WireHeaders {
    return { ...this.headers };
  }

  getHeaderNames(): string[] {
    return Object.keys(this.headers);
  }

  hasHeader(name: string): boolean {
    return name.toLowerCase() in this.headers;
  }

  removeHeader(name: string): void {
    delete this.headers[name.toLowerCase()];
  }

  writeHead(status: number, reasonOrHeaders?: string | WireHeaders, maybeHeaders?: WireHeaders): this {
    this.statusCode = status;
    const headers = typeof reasonOrHeaders === 'object' ? reasonOrHeaders : maybeHeaders;
    if (headers !== undefined) for (const k of Object.keys(headers)) this.headers[k.toLowerCase()] = headers[k] as string;
    return this;
  }

  writeEarlyHints(): void {}
  addTrailers(): void {}
  flushHeaders(): void {}

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.headersSent = true;
    if (this.streaming) this.send(chunk);
    else {
      this.buffered.push(chunk);
      this.bufferedBytes += sizeOf(chunk);
      if (this.bufferedBytes >= STREAM_WINDOW_BYTES) this.startStreaming();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.startStreaming());
      }
    }
    if (this.unacked < STREAM_WINDOW_BYTES) cb();
    else this.waiting = cb;
  }

  private send(chunk: Buffer | string): void {
    this.unacked += sizeOf(chunk);
    this.sink.chunk(chunk);
  }

  /** The serving thread handed `bytes` more to the client: writes held back by the window go on. */
  acknowledge(bytes: number): void {
    this.unacked -= bytes;
    const w = this.waiting;
    if (w !== undefined && this.unacked < STREAM_WINDOW_BYTES) {
      this.waiting = undefined;
      w();
    }
  }

  /** More is still coming after a turn of the event loop (or a window's worth already): send what there is and stream the rest. */
  private startStreaming(): void {
    if (this.writableFinished || this.streaming || this.destroyed) return;
    this.streaming = true;
    this.sink.head(this.statusCode, this.headers);
    for (const c of this.buffered) this.send(c);
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.headersSent = true;
    if (this.streaming) {
      for (const c of this.buffered) this.send(c);
      this.buffered = [];
      this.sink.end();
    } else {
      const b = this.buffered;
      const body =
        b.length === 0
          ? undefined
          : b.length === 1
            ? (b[0] as Buffer | string)
            : Buffer.concat(b.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)));
      this.buffered = [];
      this.sink.whole(this.statusCode, this.headers, body);
    }
    cb();
  }
}
