import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { deepFreeze, type JsonObject } from '../../config/plugins/index.js';
import type { HostError } from '../../errors/index.js';
import type { HealthResult, PluginContext, PluginInterface, PluginMetadata } from '../../sdk/index.js';
import { callHook } from '../hooks.js';
import { InflightVersion } from '../inflight.js';
import { inPluginScope } from '../plugin-scope.js';
import type { LoadedVersion, RegisteredRoute, RequestHandler } from '../types.js';
import type { PluginTimers } from './evaluate.js';

/** One version loaded in the serving thread, with its own Fastify instance. */
export class LoadedPlugin extends InflightVersion implements LoadedVersion {
  readonly loadedAt = new Date();
  readonly runtime = 'inline';
  /** Straight into the version's Fastify router: no copy, no extra hop. */
  readonly handle: RequestHandler;

  constructor(
    readonly name: string,
    readonly hash: string,
    readonly metadata: PluginMetadata,
    private readonly instance: PluginInterface,
    private readonly server: FastifyInstance,
    readonly routes: readonly RegisteredRoute[],
    private readonly ctx: PluginContext,
    /** What `ctx.config` reads. */
    private readonly config: { current: JsonObject },
    private readonly abort: AbortController,
    private readonly timers: PluginTimers,
  ) {
    super();
    // each request runs in the plugin's scope: what its handler schedules is the plugin's (see plugin-scope.ts)
    const routing = (server as unknown as { routing: RequestHandler }).routing;
    this.handle = (req, res) => inPluginScope(name, routing, req, res);
  }

  /**
   * Hands an upgrade to the version's own Fastify server, where `@fastify/websocket` (or any plugin listening
   * for 'upgrade' on `server.server`) takes it exactly as in a Fastify app of its own. False when nothing listens.
   */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const raw = this.server.server;
    if (raw.listenerCount('upgrade') === 0) return false;
    raw.emit('upgrade', req, socket, head);
    return true;
  };

  /**
   * The WebSockets this version still holds when it stops get close code 1001 (going away), the code that
   * tells a client to reconnect (and so reach the version now serving). `@fastify/websocket`'s own close
   * sends none; its clients are reached through the `websocketServer` it decorates the instance with.
   */
  private closeWebSockets(): void {
    type Clients = { clients?: Iterable<{ close(code: number, reason: string): void }> };
    // decorated on the context the plugin registered it in (a child), so every context is looked at
    const servers = new Set<Clients>();
    for (const inst of contextsOf(this.server)) {
      const wss = (inst as unknown as { websocketServer?: Clients }).websocketServer;
      if (wss !== undefined) servers.add(wss);
    }
    for (const wss of servers) {
      for (const client of wss.clients ?? []) {
        try {
          client.close(1001, 'plugin version replaced');
        } catch {
          // a socket already failing is destroyed by the server's close below
        }
      }
    }
  }

  get version(): string {
    return this.metadata.version;
  }

  get log() {
    return this.ctx.log;
  }

  /** Runs `healthCheck` if the plugin has one. */
  async health(timeoutMs: number): Promise<HealthResult> {
    const hc = this.instance.healthCheck;
    if (typeof hc !== 'function') return { ok: true, detail: 'no healthCheck defined' };
    const r = await callHook(this.name, 'healthCheck', timeoutMs, () => inPluginScope(this.name, () => hc.call(this.instance, this.ctx)));
    if (typeof r === 'boolean') return { ok: r };
    if (r === null || typeof r !== 'object' || typeof (r as HealthResult).ok !== 'boolean') {
      return { ok: false, detail: 'healthCheck returned neither a boolean nor { ok }' };
    }
    return r;
  }

  /** Calls `onConfigChange(ctx, next, prev)` if the plugin has it; `ctx.config` becomes `next` once it resolved. */
  async reconfigure(next: JsonObject, timeoutMs: number): Promise<boolean> {
    const hook = this.instance.onConfigChange;
    if (typeof hook !== 'function') return false;
    const prev = this.config.current;
    const frozen = deepFreeze(structuredClone(next));
    await callHook(this.name, 'onConfigChange', timeoutMs, () =>
      inPluginScope(this.name, () => hook.call(this.instance, this.ctx, frozen, prev)),
    );
    this.config.current = frozen;
    return true;
  }

  /**
   * Stops this version: aborts its signal, runs `cleanup` (time-limited; a throw
   * or hang is logged and unload completes anyway), closes its Fastify instance
   * and clears its timers. Never throws.
   */
  async unload(timeoutMs: number): Promise<{ error?: HostError }> {
    let error: HostError | undefined;
    this.abort.abort(new Error('plugin unloading'));
    // before cleanup: a socket's handler may use what cleanup releases
    this.closeWebSockets();
    try {
      await callHook(this.name, 'cleanup', timeoutMs, () => inPluginScope(this.name, () => this.instance.cleanup(this.ctx)));
    } catch (err) {
      error = err as HostError;
      this.ctx.log.error({ err, code: error.code }, `cleanup failed: ${error.message}`);
    }
    await Promise.race([this.server.close(), new Promise((r) => setTimeout(r, timeoutMs).unref())]).catch(() => {});
    this.timers.dispose();
    return error === undefined ? {} : { error };
  }

  /**
   * Shared schemas (`addSchema`) of the instance and of its child contexts,
   * where plugin routes live. Fastify keeps children under a private symbol;
   * if that ever changes, only the root's schemas are found (and the OpenAPI
   * document neutralises references it cannot resolve).
   */
  sharedSchemas(): unknown[] {
    const out = new Map<string, unknown>();
    for (const inst of contextsOf(this.server)) {
      for (const [id, schema] of Object.entries(inst.getSchemas() as Record<string, unknown>)) if (!out.has(id)) out.set(id, schema);
    }
    return [...out.values()];
  }
}

/**
 * An instance and its child contexts, depth first (bounded). Fastify keeps children under a private symbol;
 * if that ever changes, only the root is found.
 */
function contextsOf(root: FastifyInstance): FastifyInstance[] {
  const out: FastifyInstance[] = [];
  const visit = (inst: FastifyInstance, depth: number) => {
    out.push(inst);
    if (depth > 20) return;
    const sym = Object.getOwnPropertySymbols(inst).find((x) => x.description === 'fastify.children');
    const children = sym === undefined ? [] : ((inst as unknown as Record<symbol, unknown>)[sym] as FastifyInstance[]);
    for (const c of Array.isArray(children) ? children : []) visit(c, depth + 1);
  };
  visit(root, 0);
  return out;
}
