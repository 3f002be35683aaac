/**
 * An in-process network for simulations: one shared `MemorySwitch` and, for each node, a
 * `Network` view bound to the node's address (`sim-1:1`) and device ID. Connections are pairs
 * of `PeerConnection` objects that deliver messages asynchronously and in order, with the same
 * semantics as the TLS transport: requests correlated by id, error replies as FerryErrors with
 * the handler's code, timeouts, a graceful close that arrives after the messages sent before it,
 * byte counters (JSON header + payload + a small frame overhead).
 *
 * The switch is where faults are made: partitions (existing connections across them die, new
 * dials fail with PEER_UNAVAILABLE), stalls (a link holds its messages for a while), dropped
 * connections, corrupted block replies (one byte flipped: the receiver must notice by hash),
 * and nodes that are down. Random choices (which byte to flip) come from the `random`
 * function given to the switch, so a seeded simulation makes the same choices.
 *
 * Nothing here is used by the real node; it lives beside the interfaces it implements.
 */
import { FerryError, errorMessage, isFerryError, type ErrorCode } from '../core/errors.js';
import type { ConnectionStats, Message, PeerConnection } from './connection.js';
import type { AcceptHandlers, Network, NetworkListener } from './network.js';

export interface MemorySwitchOptions {
  /** Random numbers in [0, 1) for the switch's own choices (default Math.random). */
  readonly random?: () => number;
  /** Bandwidth of each direction of each link, bytes per second (default unlimited). */
  readonly bytesPerSecond?: number;
  /** Added to every message's delivery time, ms (default 0). */
  readonly latencyMs?: number;
  /** Default time a request waits for its reply (default 60 s, as the TLS transport). */
  readonly requestTimeoutMs?: number;
  /** Called for handler errors and other oddities (default: ignored). */
  readonly onLog?: (line: string) => void;
}

export interface SwitchStats {
  connections: number;
  messages: number;
  bytes: number;
  corrupted: number;
  dropped: number;
  refusedDials: number;
  timeouts: number;
}

/** Bytes a frame costs beyond its JSON header and payload (kind, id, lengths). */
const FRAME_OVERHEAD = 12;
const MAX_ERROR_MESSAGE = 64 * 1024;

type Frame =
  | { kind: 'message'; header: string; payload?: Buffer; bytes: number }
  | { kind: 'request'; id: number; header: string; payload?: Buffer; bytes: number }
  | { kind: 'reply'; id: number; header: string; payload?: Buffer; bytes: number }
  | { kind: 'error'; id: number; code: string; message: string; bytes: number }
  | { kind: 'close'; reason: string; bytes: number };

interface Queued {
  frame: Frame;
  readyAt: number;
}

interface Listening {
  readonly address: string;
  readonly deviceId: string;
  readonly handlers: AcceptHandlers;
}

const linkKey = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);
const dirKey = (from: string, to: string) => `${from}>${to}`;

export class MemorySwitch {
  readonly stats: SwitchStats = { connections: 0, messages: 0, bytes: 0, corrupted: 0, dropped: 0, refusedDials: 0, timeouts: 0 };
  readonly random: () => number;
  readonly requestTimeoutMs: number;
  private readonly bytesPerSecond: number;
  private readonly latencyMs: number;
  private readonly listeners = new Map<string, Listening>();
  private readonly blocked = new Set<string>();
  private readonly down = new Set<string>();
  private readonly stalls = new Map<string, number>();
  private readonly corrupt = new Map<string, number>();
  private readonly live = new Set<MemoryConnection>();
  private nextPort = 40000;
  /** Frames queued on some pipe plus requests a handler is still answering. */
  private busy = 0;
  readonly log: (line: string) => void;

  constructor(options: MemorySwitchOptions = {}) {
    this.random = options.random ?? Math.random;
    this.bytesPerSecond = options.bytesPerSecond ?? Infinity;
    this.latencyMs = options.latencyMs ?? 0;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.log = options.onLog ?? (() => undefined);
  }

  /** The network as the node at `address` with `deviceId` sees it. */
  network(address: string, deviceId: string): Network {
    return new MemoryNetwork(this, address, deviceId);
  }

  // ---- faults ---------------------------------------------------------------------------

  /** No traffic between any address of `a` and any of `b` until `heal`; their connections die. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) if (x !== y) this.blocked.add(linkKey(x, y));
    this.killWhere((c) => this.blocked.has(linkKey(c.localAddress, c.peerAddress)), 'network partition');
  }

  /** Removes every partition. */
  heal(): void {
    this.blocked.clear();
  }

  /** Whether `a` and `b` can reach each other now. */
  reachable(a: string, b: string): boolean {
    return !this.blocked.has(linkKey(a, b)) && !this.down.has(a) && !this.down.has(b);
  }

  /** The link between `a` and `b` holds every message (both ways) for `ms` from now. */
  stall(a: string, b: string, ms: number, now = Date.now()): void {
    const key = linkKey(a, b);
    this.stalls.set(key, Math.max(this.stalls.get(key) ?? 0, now + ms));
  }

  /** Ends every stall now. */
  unstall(): void {
    this.stalls.clear();
    for (const c of this.live) c.pipe.kick();
  }

  /** Drops the connections of `address` (all when omitted) as a reset link would; returns how many. */
  dropConnections(address?: string): number {
    return this.killWhere((c) => address === undefined || c.localAddress === address || c.peerAddress === address, 'connection reset');
  }

  /** Flips one byte in each of the next `n` replies with a payload going from `from` to `to`. */
  corruptNext(from: string, to: string, n: number): void {
    const key = dirKey(from, to);
    this.corrupt.set(key, (this.corrupt.get(key) ?? 0) + n);
  }

  /** Forgets pending corruptions. */
  clearCorruption(): void {
    this.corrupt.clear();
  }

  /** The node at `address` is gone (crashed): its connections die, nobody reaches it. */
  setDown(address: string, isDown: boolean): void {
    if (isDown) {
      this.down.add(address);
      this.killWhere((c) => c.localAddress === address || c.peerAddress === address, `${address} is down`);
    } else {
      this.down.delete(address);
    }
  }

  /** True when no message is queued and no request is being answered anywhere. */
  get idle(): boolean {
    return this.busy === 0;
  }

  /** Open connections, as [from, to] address pairs (each connection once, from the dialer). */
  openConnections(): [string, string][] {
    return [...this.live].filter((c) => c.dialer).map((c) => [c.localAddress, c.peerAddress]);
  }

  // ---- internals used by the networks and connections ---------------------------------

  listen(address: string, deviceId: string, handlers: AcceptHandlers): NetworkListener {
    if (this.listeners.has(address)) throw new FerryError('IO_ERROR', `address ${address} is already in use`);
    const entry: Listening = { address, deviceId, handlers };
    this.listeners.set(address, entry);
    return {
      address,
      close: async () => {
        if (this.listeners.get(address) === entry) this.listeners.delete(address);
      },
    };
  }

  async dial(from: string, fromDeviceId: string, to: string, expectedDeviceId: string): Promise<PeerConnection> {
    await new Promise((r) => setImmediate(r));
    const target = this.listeners.get(to);
    if (!target || !this.reachable(from, to)) {
      this.stats.refusedDials++;
      throw new FerryError('PEER_UNAVAILABLE', `cannot reach ${to}${target ? '' : ': nothing listens there'}`, { data: { address: to } });
    }
    if (target.deviceId !== expectedDeviceId) {
      throw new FerryError('UNKNOWN_DEVICE', `${to} is device ${target.deviceId}, not ${expectedDeviceId}`, { data: { address: to } });
    }
    const ephemeral = `${from.replace(/:\d+$/, '')}:${this.nextPort++}`;
    if (!target.handlers.authorize(fromDeviceId, ephemeral)) {
      target.handlers.onRefused?.(fromDeviceId, ephemeral);
      throw new FerryError('UNKNOWN_DEVICE', `${to} does not accept device ${fromDeviceId}`, { data: { address: to } });
    }
    if (target.handlers.paused?.(fromDeviceId)) throw new FerryError('PEER_UNAVAILABLE', `${to} has paused device ${fromDeviceId}`, { data: { address: to } });
    const near = new MemoryConnection(this, { localAddress: from, peerAddress: to, deviceId: target.deviceId, remoteAddress: to, dialer: true });
    const far = new MemoryConnection(this, { localAddress: to, peerAddress: from, deviceId: fromDeviceId, remoteAddress: ephemeral, dialer: false });
    near.pipe = new Pipe(this, near, far);
    far.pipe = new Pipe(this, far, near);
    near.peer = far;
    far.peer = near;
    this.live.add(near);
    this.live.add(far);
    this.stats.connections++;
    try {
      target.handlers.onConnection(far);
    } catch (err) {
      this.log(`onConnection at ${to} threw: ${errorMessage(err)}`);
    }
    return near;
  }

  stalledUntil(a: string, b: string): number {
    return this.stalls.get(linkKey(a, b)) ?? 0;
  }

  /** Delivery time of `bytes` sent now on a pipe whose last frame is due at `lastReadyAt`. */
  readyAt(lastReadyAt: number, bytes: number): number {
    const now = Date.now();
    const transfer = Number.isFinite(this.bytesPerSecond) ? (bytes * 1000) / this.bytesPerSecond : 0;
    return Math.max(now + this.latencyMs, lastReadyAt) + transfer;
  }

  /** Applies a pending corruption of the from→to direction to a reply payload. */
  maybeCorrupt(from: string, to: string, payload: Buffer): Buffer {
    const key = dirKey(from, to);
    const left = this.corrupt.get(key) ?? 0;
    if (left <= 0 || payload.length === 0) return payload;
    this.corrupt.set(key, left - 1);
    const at = Math.floor(this.random() * payload.length);
    payload[at] = payload[at]! ^ (1 + Math.floor(this.random() * 255));
    this.stats.corrupted++;
    return payload;
  }

  countFrame(bytes: number): void {
    this.stats.messages++;
    this.stats.bytes += bytes;
  }

  addBusy(n: number): void {
    this.busy += n;
  }

  forget(c: MemoryConnection): void {
    this.live.delete(c);
  }

  private killWhere(match: (c: MemoryConnection) => boolean, why: string): number {
    let n = 0;
    for (const c of [...this.live]) {
      if (!c.dialer || !match(c)) continue;
      n++;
      c.reset(why);
    }
    this.stats.dropped += n;
    return n;
  }
}

class MemoryNetwork implements Network {
  constructor(
    private readonly sw: MemorySwitch,
    private readonly address: string,
    private readonly deviceId: string,
  ) {}

  async listen(handlers: AcceptHandlers): Promise<NetworkListener> {
    return this.sw.listen(this.address, this.deviceId, handlers);
  }

  dial(address: string, expectedDeviceId: string): Promise<PeerConnection> {
    return this.sw.dial(this.address, this.deviceId, address, expectedDeviceId);
  }
}

/** One direction of a connection: frames in order, each delivered when due and not stalled. */
class Pipe {
  private readonly queue: Queued[] = [];
  private lastReadyAt = 0;
  private timer?: NodeJS.Timeout;
  private immediate?: NodeJS.Immediate;
  dead = false;

  constructor(
    private readonly sw: MemorySwitch,
    private readonly from: MemoryConnection,
    private readonly to: MemoryConnection,
  ) {}

  push(frame: Frame): void {
    if (this.dead) return;
    this.lastReadyAt = this.sw.readyAt(this.lastReadyAt, frame.bytes);
    this.queue.push({ frame, readyAt: this.lastReadyAt });
    this.sw.addBusy(1);
    this.sw.countFrame(frame.bytes);
    this.schedule();
  }

  /** Drops everything queued (the link died). */
  kill(): void {
    this.dead = true;
    clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = undefined;
    this.sw.addBusy(-this.queue.length);
    this.queue.length = 0;
  }

  /** Re-evaluates the schedule (after a stall ended early). */
  kick(): void {
    if (this.dead || this.queue.length === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.immediate || this.queue.length === 0) return;
    const due = Math.max(this.queue[0]!.readyAt, this.sw.stalledUntil(this.from.localAddress, this.to.localAddress));
    const wait = due - Date.now();
    if (wait <= 0) {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.deliver();
      });
    } else {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.deliver();
      }, Math.ceil(wait));
    }
  }

  private deliver(): void {
    const now = Date.now();
    if (this.sw.stalledUntil(this.from.localAddress, this.to.localAddress) > now) return this.schedule();
    // Deliver what is due, a bounded number at a time so other links get their turn.
    for (let n = 0; n < 64 && this.queue.length > 0 && !this.dead && this.queue[0]!.readyAt <= now; n++) {
      const { frame } = this.queue.shift()!;
      this.sw.addBusy(-1);
      this.to.receive(frame);
    }
    this.schedule();
  }
}

interface PendingRequest {
  resolve(message: Message): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

interface ConnectionInit {
  readonly localAddress: string;
  readonly peerAddress: string;
  readonly deviceId: string;
  readonly remoteAddress: string;
  readonly dialer: boolean;
}

/** One end of an in-memory connection. */
export class MemoryConnection implements PeerConnection {
  readonly deviceId: string;
  readonly remoteAddress: string;
  /** The listening address of this end's node and of the peer's. */
  readonly localAddress: string;
  readonly peerAddress: string;
  readonly dialer: boolean;
  pipe!: Pipe;
  peer!: MemoryConnection;

  private bytesIn = 0;
  private bytesOut = 0;
  private isClosed = false;
  private closeReason: Error | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly closeHandlers: ((reason: Error | undefined) => void)[] = [];
  private messageHandler?: (message: Message) => void;
  private requestHandler?: (message: Message) => Promise<Message>;
  private early: Frame[] = [];

  constructor(
    private readonly sw: MemorySwitch,
    init: ConnectionInit,
  ) {
    this.deviceId = init.deviceId;
    this.remoteAddress = init.remoteAddress;
    this.localAddress = init.localAddress;
    this.peerAddress = init.peerAddress;
    this.dialer = init.dialer;
  }

  get stats(): ConnectionStats {
    return { bytesIn: this.bytesIn, bytesOut: this.bytesOut };
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(message: Message): void {
    if (this.isClosed) throw this.closedError();
    const header = JSON.stringify(message.header);
    const payload = message.payload && Buffer.from(message.payload);
    this.write({ kind: 'message', header, payload, bytes: frameBytes(header, payload) });
  }

  request(message: Message, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Message> {
    if (this.isClosed) return Promise.reject(this.closedError());
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.nextId++;
    const header = JSON.stringify(message.header);
    const payload = message.payload && Buffer.from(message.payload);
    const timeoutMs = options.timeoutMs ?? this.sw.requestTimeoutMs;
    return new Promise<Message>((resolve, reject) => {
      const onAbort = () => settle(() => reject(signal!.reason));
      const settle = (fn: () => void) => {
        clearTimeout(entry.timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
        fn();
      };
      const entry: PendingRequest = {
        resolve: (m) => settle(() => resolve(m)),
        reject: (err) => settle(() => reject(err)),
        timer: setTimeout(() => {
          this.sw.stats.timeouts++;
          entry.reject(new FerryError('PEER_UNAVAILABLE', `request to ${this.deviceId.slice(0, 7)} timed out after ${timeoutMs} ms`, { data: { deviceId: this.deviceId, timeoutMs } }));
        }, timeoutMs),
      };
      this.pending.set(id, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.write({ kind: 'request', id, header, payload, bytes: frameBytes(header, payload) });
    });
  }

  onMessage(handler: (message: Message) => void): void {
    this.messageHandler = handler;
    this.scheduleEarly();
  }

  onRequest(handler: (message: Message) => Promise<Message>): void {
    this.requestHandler = handler;
    this.scheduleEarly();
  }

  onClose(handler: (reason: Error | undefined) => void): void {
    if (this.isClosed) {
      queueMicrotask(() => this.callCloseHandler(handler));
      return;
    }
    this.closeHandlers.push(handler);
  }

  /** Graceful close: the peer gets the messages sent before, then the close. */
  close(reason?: Error): void {
    if (this.isClosed) return;
    const text = reason?.message ?? '';
    this.write({ kind: 'close', reason: text, bytes: FRAME_OVERHEAD + Buffer.byteLength(text) });
    this.finish(reason);
  }

  /** Abrupt end of the link (partition, reset, crash): both ends learn at once, queued frames are lost. */
  reset(why: string): void {
    for (const end of [this, this.peer]) {
      end.pipe.kill();
      end.finish(new FerryError('PEER_UNAVAILABLE', `connection to ${end.deviceId.slice(0, 7)} lost: ${why}`));
    }
  }

  /** A frame from the peer arrives. */
  receive(frame: Frame): void {
    if (this.isClosed) return;
    this.bytesIn += frame.bytes;
    switch (frame.kind) {
      case 'close':
        this.pipe.kill();
        this.finish(new FerryError('CLOSED', `${this.deviceId.slice(0, 7)} closed the connection${frame.reason ? `: ${frame.reason}` : ''}`));
        return;
      case 'reply':
      case 'error':
        return this.settleReply(frame);
      case 'message':
      case 'request':
        if (!this.hasHandler(frame.kind) || this.early.some((f) => f.kind === frame.kind)) {
          this.early.push(frame);
          return;
        }
        return this.dispatch(frame);
    }
  }

  private write(frame: Frame): void {
    this.bytesOut += frame.bytes;
    this.pipe.push(frame);
  }

  private settleReply(frame: Extract<Frame, { kind: 'reply' | 'error' }>): void {
    const pending = this.pending.get(frame.id);
    if (!pending) return; // timed out or aborted: nobody waits
    if (frame.kind === 'error') {
      pending.reject(new FerryError(frame.code as ErrorCode, frame.message, { data: { deviceId: this.deviceId, remote: true } }));
      return;
    }
    const header = JSON.parse(frame.header) as Record<string, unknown>;
    pending.resolve(frame.payload === undefined ? { header } : { header, payload: frame.payload });
  }

  private hasHandler(kind: 'message' | 'request'): boolean {
    return kind === 'message' ? this.messageHandler !== undefined : this.requestHandler !== undefined;
  }

  private scheduleEarly(): void {
    if (this.early.length > 0) queueMicrotask(() => this.deliverEarly());
  }

  private deliverEarly(): void {
    const waiting: Frame[] = [];
    for (const f of this.early) {
      if (this.isClosed) return;
      if ((f.kind === 'message' || f.kind === 'request') && this.hasHandler(f.kind)) this.dispatch(f);
      else waiting.push(f);
    }
    this.early = waiting;
  }

  private dispatch(frame: Extract<Frame, { kind: 'message' | 'request' }>): void {
    const header = JSON.parse(frame.header) as Record<string, unknown>;
    const message: Message = frame.payload === undefined ? { header } : { header, payload: frame.payload };
    if (frame.kind === 'message') {
      try {
        const result: unknown = this.messageHandler!(message);
        if (result instanceof Promise) result.catch((err: unknown) => this.sw.log(`message handler failed: ${errorMessage(err)}`));
      } catch (err) {
        this.sw.log(`message handler failed: ${errorMessage(err)}`);
      }
      return;
    }
    const id = frame.id;
    this.sw.addBusy(1);
    void (async () => {
      let reply: Frame;
      try {
        const answer = await this.requestHandler!(message);
        const h = JSON.stringify(answer.header);
        let payload: Buffer | undefined = answer.payload && Buffer.from(answer.payload);
        if (payload) payload = this.sw.maybeCorrupt(this.localAddress, this.peerAddress, payload);
        reply = { kind: 'reply', id, header: h, payload, bytes: frameBytes(h, payload) };
      } catch (err) {
        if (!isFerryError(err)) this.sw.log(`request handler failed: ${errorMessage(err)}`);
        const code = isFerryError(err) ? err.code : 'IO_ERROR';
        const text = errorMessage(err).slice(0, MAX_ERROR_MESSAGE);
        reply = { kind: 'error', id, code, message: text, bytes: FRAME_OVERHEAD + code.length + Buffer.byteLength(text) };
      } finally {
        this.sw.addBusy(-1);
      }
      if (!this.isClosed) this.write(reply);
    })();
  }

  private finish(reason: Error | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    this.early = [];
    this.sw.forget(this);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.closedError());
    for (const h of this.closeHandlers.splice(0)) this.callCloseHandler(h);
  }

  private callCloseHandler(handler: (reason: Error | undefined) => void): void {
    try {
      handler(this.closeReason);
    } catch (err) {
      this.sw.log(`close handler failed: ${errorMessage(err)}`);
    }
  }

  private closedError(): FerryError {
    const r = this.closeReason;
    return new FerryError('CLOSED', `connection to ${this.deviceId.slice(0, 7)} is closed${r ? `: ${r.message}` : ''}`, {
      cause: r,
      data: { deviceId: this.deviceId },
    });
  }
}

function frameBytes(header: string, payload: Buffer | undefined): number {
  return FRAME_OVERHEAD + Buffer.byteLength(header) + (payload?.length ?? 0);
}
