import { type ServerResponse, validateHeaderName, validateHeaderValue } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import { answerProblem } from './forward.js';
import type { PluginHandle } from './handle.js';
import type { FromWorker, WireHeaders } from './protocol.js';
import { type Forwarded, observe } from './stats.js';

interface Pending {
  res: ServerResponse;
  /** Where the request went: acknowledgements and aborts of its stream go back there. */
  handle: PluginHandle;
  /** Past it the request is ended; a streamed answer pushes it on with every chunk the client takes. */
  deadline: number;
  started: number;
  streaming: boolean;
}

type AnswerMessage = Extract<FromWorker, { t: 'res' | 'head' | 'chunk' | 'end' }>;

/** Why an answer's status line or headers cannot be sent, or undefined when they can. */
export function headProblem(status: unknown, headers: unknown): string | undefined {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    return `status ${String(status)} is not a final HTTP status`;
  }
  if (headers === null || typeof headers !== 'object') return 'its headers are not an object';
  for (const [k, v] of Object.entries(headers as WireHeaders)) {
    try {
      validateHeaderName(k);
      for (const x of Array.isArray(v) ? v : [v]) {
        if (typeof x !== 'string' && typeof x !== 'number') throw new Error(`value of type ${typeof x}`);
        validateHeaderValue(k, String(x));
      }
    } catch (err) {
      return `header ${JSON.stringify(k.slice(0, 64))} cannot be sent (${(err as Error).message})`;
    }
  }
  return undefined;
}

function bytesOf(data: unknown): Buffer | string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/**
 * The requests a supervised version forwarded and has not answered yet, and
 * how their answers reach the client. Every answer is checked before it is
 * written (a status or header Node would refuse is a 502 for that request
 * alone); a streamed answer is acknowledged chunk by chunk once the client's
 * socket took it, so the plugin is paused while the client does not read; a
 * stream that moves neither way for the request timeout ends that request.
 */
export class PendingAnswers {
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly name: string,
    private readonly timeoutMs: number,
    private readonly forwarded: Forwarded,
    private readonly log: FastifyBaseLogger,
  ) {}

  add(id: number, res: ServerResponse, handle: PluginHandle): void {
    const now = performance.now();
    this.pending.set(id, { res, handle, deadline: now + this.timeoutMs, started: now, streaming: false });
  }

  has(id: number): boolean {
    return this.pending.has(id);
  }

  ids(): number[] {
    return [...this.pending.keys()];
  }

  private finish(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    observe(this.forwarded, performance.now() - p.started);
    return p;
  }

  /** Answers request `id` with a problem of the host's own (the plugin's side ended, the deadline passed). */
  fail(id: number, code: 'PH_ERR_PLUGIN_UNAVAILABLE' | 'PH_ERR_PLUGIN_TIMEOUT' | 'PH_ERR_PLUGIN_BAD_ANSWER', detail: string): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (p.streaming) p.handle.post({ t: 'abort', id });
    answerProblem(p.res, code, detail, code === 'PH_ERR_PLUGIN_UNAVAILABLE' ? { 'retry-after': '1' } : {});
  }

  private refuse(id: number, why: string): void {
    this.log.error(
      { plugin: this.name, code: 'PH_ERR_PLUGIN_BAD_ANSWER' },
      `plugin ${this.name} gave an answer that cannot be sent: ${why}`,
    );
    const p = this.pending.get(id);
    // whatever the plugin still sends for this request is dropped: its side of the answer is ended too
    if (p !== undefined && !p.streaming) p.handle.post({ t: 'abort', id });
    this.fail(id, 'PH_ERR_PLUGIN_BAD_ANSWER', `plugin ${this.name} gave an answer that cannot be sent`);
  }

  /** Node's own checks are the last word: what it still refuses is that request's 502. */
  private writeHead(id: number, p: Pending, status: number, headers: WireHeaders): boolean {
    try {
      p.res.writeHead(status, headers);
      return true;
    } catch (err) {
      for (const h of p.res.getHeaderNames()) p.res.removeHeader(h);
      this.refuse(id, (err as Error).message);
      return false;
    }
  }

  /** Writes one answer message to its client. Anything malformed is that request's 502, nothing more. */
  relay(msg: AnswerMessage): void {
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    if (p.res.destroyed) {
      this.finish(msg.id);
      if (p.streaming) p.handle.post({ t: 'abort', id: msg.id });
      return;
    }
    switch (msg.t) {
      case 'res': {
        const why = headProblem(msg.status, msg.headers);
        if (why !== undefined) {
          this.refuse(msg.id, why);
          return;
        }
        if (p.streaming) {
          this.refuse(msg.id, 'a whole answer after a streamed head');
          return;
        }
        const body = msg.body === undefined ? undefined : bytesOf(msg.body);
        if (msg.body !== undefined && body === undefined) {
          this.refuse(msg.id, 'its body is neither bytes nor text');
          return;
        }
        if (!this.writeHead(msg.id, p, msg.status, msg.headers)) return;
        this.finish(msg.id);
        p.res.end(body);
        return;
      }
      case 'head': {
        const why = headProblem(msg.status, msg.headers);
        if (why !== undefined) {
          this.refuse(msg.id, why);
          return;
        }
        if (p.streaming) {
          this.refuse(msg.id, 'a second head');
          return;
        }
        if (!this.writeHead(msg.id, p, msg.status, msg.headers)) return;
        p.streaming = true;
        p.deadline = performance.now() + this.timeoutMs;
        // a client that leaves mid-stream: the plugin's stream is destroyed rather than left paused
        p.res.once('close', () => {
          if (this.pending.get(msg.id) === p) {
            this.pending.delete(msg.id);
            p.handle.post({ t: 'abort', id: msg.id });
          }
        });
        return;
      }
      case 'chunk': {
        const data = bytesOf(msg.data);
        if (!p.streaming || data === undefined) {
          this.refuse(msg.id, 'a chunk outside a stream');
          return;
        }
        const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
        p.deadline = performance.now() + this.timeoutMs;
        const ack = () => {
          if (this.pending.get(msg.id) !== p) return;
          p.deadline = performance.now() + this.timeoutMs;
          p.handle.post({ t: 'ack', id: msg.id, bytes });
        };
        if (p.res.write(data)) ack();
        else p.res.once('drain', ack);
        return;
      }
      case 'end': {
        this.finish(msg.id);
        p.res.end();
        return;
      }
    }
  }

  /**
   * Ends what is past its deadline: a request not answered in time gets 504;
   * a stream that moved neither way for the timeout (the plugin sends
   * nothing, or the client reads nothing) is cut, its plugin-side stream destroyed.
   */
  sweep(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (p.res.destroyed) {
        this.pending.delete(id);
        if (p.streaming) p.handle.post({ t: 'abort', id });
      } else if (now > p.deadline) {
        if (!p.streaming) {
          this.fail(id, 'PH_ERR_PLUGIN_TIMEOUT', `plugin ${this.name} did not answer within ${this.timeoutMs} ms`);
          continue;
        }
        this.pending.delete(id);
        p.handle.post({ t: 'abort', id });
        this.log.warn(
          { plugin: this.name, reason: 'stream-stalled' },
          `plugin ${this.name}: a streamed answer did not move for ${this.timeoutMs} ms; ending that request`,
        );
        p.res.destroy();
      }
    }
  }
}
