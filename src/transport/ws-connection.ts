/**
 * PeerConnection over one WebSocket on a mutually authenticated TLS socket. Each WebSocket
 * message is one frame (frame.ts) whose header is an envelope (envelope.ts) saying whether it
 * is a one-way message, a request or a reply, and correlating replies with requests by id.
 * Nothing a peer sends can crash the process: a bad frame is logged and ends the connection,
 * a throwing handler becomes an error reply or a log line. A heartbeat notices links that
 * died silently.
 */
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { FerryError, errorMessage, isFerryError, type ErrorCode } from '../core/errors.js';
import { shortDeviceId } from '../core/device-id.js';
import type { ConnectionStats, Message, PeerConnection } from '../protocol/connection.js';
import { parseEnvelope, splitHint, isWireErrorCode, type Envelope } from './envelope.js';
import { decodeFrame, encodeFrameParts } from './frame.js';
import { silentLogger, type Logger } from './logger.js';

export interface ConnectionOptions {
  readonly logger?: Logger;
  /** Default time a request may wait for its reply, counted from when it was written to the socket. */
  readonly requestTimeoutMs?: number;
  /** How often to ping the peer. */
  readonly heartbeatIntervalMs?: number;
  /** The connection is closed when nothing at all arrived for this long. */
  readonly idleTimeoutMs?: number;
}

export interface WsPeerConnectionInit extends ConnectionOptions {
  readonly ws: WebSocket;
  /** The TLS socket under `ws`, for byte counts and backpressure. */
  readonly socket: Socket;
  /** Verified from the peer's certificate by whoever accepted or dialed the connection. */
  readonly deviceId: string;
  readonly remoteAddress: string;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 20_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** What may pile up from the peer before the engine has installed its handlers. */
const MAX_EARLY_BYTES = 64 * 1024 * 1024;

interface Pending {
  resolve(message: Message): void;
  reject(err: unknown): void;
  timer?: NodeJS.Timeout;
  cleanup(): void;
}

interface Early {
  kind: 'message' | 'request';
  id: number;
  message: Message;
  bytes: number;
}

/**
 * Set onMessage and onRequest right after the connection is handed to you. Frames that arrive
 * before their handler is set wait (up to 64 MiB) and are delivered in arrival order once it
 * is; set both handlers in the same tick to keep the order between messages and requests too.
 */
export class WsPeerConnection implements PeerConnection {
  readonly deviceId: string;
  readonly remoteAddress: string;

  readonly #ws: WebSocket;
  readonly #socket: Socket;
  readonly #log: Logger;
  readonly #requestTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #closeHandlers: Array<(reason: Error | undefined) => void> = [];
  #messageHandler?: (message: Message) => void;
  #requestHandler?: (message: Message) => Promise<Message>;
  #early: Early[] = [];
  #earlyBytes = 0;
  #nextId = 1;
  #closed = false;
  #closeReason: Error | undefined;
  #heartbeat: NodeJS.Timeout;

  constructor(init: WsPeerConnectionInit) {
    this.deviceId = init.deviceId;
    this.remoteAddress = init.remoteAddress;
    this.#ws = init.ws;
    this.#socket = init.socket;
    this.#log = init.logger ?? silentLogger;
    this.#requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#heartbeat = this.#startHeartbeat(
      init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    );
    this.#ws.binaryType = 'nodebuffer';
    this.#ws.on('message', (data, isBinary) => this.#receive(data as Buffer, isBinary));
    this.#ws.on('error', (err) => this.#onSocketError(err));
    this.#ws.on('close', (code, reason) => this.#onWsClose(code, reason.toString('utf8')));
    if (this.#ws.readyState !== this.#ws.OPEN) this.#finish(new FerryError('CLOSED', `connection to ${this.#name} closed before it was set up`));
  }

  /**
   * Bytes through the TLS socket: WebSocket frames after compression. Node counts them on the
   * cleartext side of TLS, so TLS record overhead (about 22 bytes per 16 KiB record, ~0.15 %)
   * is not included. Node keeps the counters after the socket is destroyed, so they stay
   * valid after close.
   */
  get stats(): ConnectionStats {
    return { bytesIn: this.#socket.bytesRead, bytesOut: this.#socket.bytesWritten };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes queued for the peer but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** Resolves once the outgoing buffer has drained below the socket's high-water mark (or the connection closed). */
  drain(): Promise<void> {
    const socket = this.#socket;
    if (this.#closed || !socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  send(message: Message): void {
    if (this.#closed) throw this.#closedError();
    const { header, compress } = splitHint(message.header);
    this.#write(encodeFrameParts({ kind: 'message', header }, message.payload, { compress }));
  }

  request(message: Message, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Message> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId++;
    let frame: Buffer[];
    try {
      const { header, compress } = splitHint(message.header);
      frame = encodeFrameParts({ kind: 'request', id, header }, message.payload, { compress });
    } catch (err) {
      return Promise.reject(err);
    }
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise<Message>((resolve, reject) => {
      const onAbort = (): void => settle(() => reject(signal!.reason));
      const pending: Pending = {
        resolve: (reply) => settle(() => resolve(reply)),
        reject: (err) => settle(() => reject(err)),
        cleanup: () => {
          if (pending.timer) clearTimeout(pending.timer);
          signal?.removeEventListener('abort', onAbort);
          this.#pending.delete(id);
        },
      };
      const settle = (fn: () => void): void => {
        pending.cleanup();
        fn();
      };
      this.#pending.set(id, pending);
      signal?.addEventListener('abort', onAbort, { once: true });
      // The clock starts when the request has left this process, so a long local send queue
      // (a puller asking for many blocks at once) does not count against the peer.
      this.#write(frame, () => {
        if (!this.#pending.has(id)) return;
        pending.timer = setTimeout(() => {
          pending.reject(
            new FerryError('PEER_UNAVAILABLE', `request to ${this.#name} timed out after ${timeoutMs} ms`, {
              data: { deviceId: this.deviceId, timeoutMs },
            }),
          );
        }, timeoutMs);
      });
    });
  }

  onMessage(handler: (message: Message) => void): void {
    this.#messageHandler = handler;
    this.#scheduleEarlyDelivery();
  }

  onRequest(handler: (message: Message) => Promise<Message>): void {
    this.#requestHandler = handler;
    this.#scheduleEarlyDelivery();
  }

  /** Handlers accumulate; one added after close is still called (asynchronously) with the reason. */
  onClose(handler: (reason: Error | undefined) => void): void {
    if (this.#closed) {
      queueMicrotask(() => this.#callCloseHandler(handler));
      return;
    }
    this.#closeHandlers.push(handler);
  }

  close(reason?: Error): void {
    if (this.#closed) return;
    this.#finish(reason);
    try {
      this.#ws.close(closeCodeFor(reason), truncateUtf8(reason?.message ?? '', 123));
    } catch {
      this.#ws.terminate();
    }
  }

  get #name(): string {
    return shortDeviceId(this.deviceId);
  }

  /** Writes one frame as one WebSocket message, in as many fragments as it has parts. */
  #write(parts: Buffer[], onWritten?: () => void): void {
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) this.#ws.send(parts[i]!, { binary: true, fin: false });
    this.#ws.send(parts[last]!, { binary: true, fin: true }, (err) => {
      // A failed write means the socket is going away; 'close' follows and settles everything.
      if (!err) onWritten?.();
    });
  }

  #receive(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    let envelope: Envelope;
    let payload: Buffer | undefined;
    try {
      if (!isBinary) throw new FerryError('INVALID_MESSAGE', 'invalid frame: received a text WebSocket message');
      const frame = decodeFrame(data);
      envelope = parseEnvelope(frame.header);
      payload = frame.payload;
    } catch (err) {
      const reason = isFerryError(err) ? err : new FerryError('INVALID_MESSAGE', `invalid frame: ${errorMessage(err)}`, { cause: err });
      this.#log.error({ deviceId: this.deviceId, remoteAddress: this.remoteAddress, err: reason }, `closing connection to ${this.#name}: ${reason.message}`);
      this.close(reason);
      return;
    }
    if (envelope.kind === 'reply') {
      this.#settleReply(envelope, payload);
      return;
    }
    const message: Message = payload === undefined ? { header: envelope.header } : { header: envelope.header, payload };
    const id = envelope.kind === 'request' ? envelope.id : 0;
    if (!this.#hasHandler(envelope.kind) || this.#early.some((item) => item.kind === envelope.kind)) {
      this.#queueEarly({ kind: envelope.kind, id, message, bytes: data.length });
      return;
    }
    this.#dispatch(envelope.kind, id, message);
  }

  #settleReply(envelope: Extract<Envelope, { kind: 'reply' }>, payload: Buffer | undefined): void {
    const pending = this.#pending.get(envelope.id);
    if (pending === undefined) {
      // Normal after a timeout or an abort: the answer came too late for anyone to want it.
      this.#log.debug({ deviceId: this.deviceId, id: envelope.id }, 'reply to a request nobody waits for');
      return;
    }
    if ('error' in envelope) {
      const { code, message } = envelope.error;
      const known = isWireErrorCode(code);
      pending.reject(
        new FerryError((known ? code : 'INVALID_MESSAGE') as ErrorCode, known ? message : `peer replied with error code ${JSON.stringify(code.slice(0, 64))}: ${message}`, {
          data: { deviceId: this.deviceId, remote: true },
        }),
      );
    } else {
      pending.resolve(payload === undefined ? { header: envelope.header } : { header: envelope.header, payload });
    }
  }

  #hasHandler(kind: 'message' | 'request'): boolean {
    return kind === 'message' ? this.#messageHandler !== undefined : this.#requestHandler !== undefined;
  }

  /**
   * Frames that arrive before the engine installed its handlers (a peer may speak first, even
   * in the same TCP read as the upgrade response) wait here in order, up to a byte limit.
   */
  #queueEarly(item: Early): void {
    this.#earlyBytes += item.bytes;
    if (this.#earlyBytes > MAX_EARLY_BYTES) {
      const reason = new FerryError('MESSAGE_TOO_LARGE', `peer ${this.#name} sent more than ${MAX_EARLY_BYTES} bytes before the connection was ready`);
      this.#log.error({ deviceId: this.deviceId, err: reason }, reason.message);
      this.close(reason);
      return;
    }
    this.#early.push(item);
  }

  #scheduleEarlyDelivery(): void {
    // A microtask, so an engine that sets both handlers in a row sees queued frames in arrival order.
    if (this.#early.length > 0) queueMicrotask(() => this.#deliverEarly());
  }

  #deliverEarly(): void {
    const waiting: Early[] = [];
    for (const item of this.#early) {
      if (this.#closed) return;
      if (this.#hasHandler(item.kind)) this.#dispatch(item.kind, item.id, item.message);
      else waiting.push(item);
    }
    this.#early = waiting;
    this.#earlyBytes = waiting.reduce((sum, item) => sum + item.bytes, 0);
  }

  #dispatch(kind: 'message' | 'request', id: number, message: Message): void {
    if (kind === 'message') {
      try {
        const result: unknown = this.#messageHandler!(message);
        if (isPromiseLike(result)) result.then(undefined, (err: unknown) => this.#logHandlerError('message', err));
      } catch (err) {
        this.#logHandlerError('message', err);
      }
      return;
    }
    const handler = this.#requestHandler!;
    void (async () => {
      let reply: Message;
      try {
        reply = await handler(message);
        if (typeof reply !== 'object' || reply === null || typeof reply.header !== 'object' || reply.header === null) {
          throw new FerryError('INVALID_MESSAGE', 'request handler returned no reply message');
        }
      } catch (err) {
        this.#replyError(id, err);
        return;
      }
      if (this.#closed) return;
      try {
        const { header, compress } = splitHint(reply.header);
        this.#write(encodeFrameParts({ kind: 'reply', id, header }, reply.payload, { compress }));
      } catch (err) {
        this.#replyError(id, err);
      }
    })();
  }

  #replyError(id: number, err: unknown): void {
    if (!isFerryError(err)) this.#logHandlerError('request', err);
    if (this.#closed) return;
    // Errors that are not FerryErrors are bugs on this side; the peer still gets an answer
    // instead of waiting for its timeout.
    const code = isFerryError(err) ? err.code : 'IO_ERROR';
    const message = truncateUtf8(errorMessage(err), 64 * 1024);
    try {
      this.#write(encodeFrameParts({ kind: 'reply', id, error: { code, message } }));
    } catch (encodeErr) {
      this.#log.error({ deviceId: this.deviceId, err: encodeErr }, 'cannot encode error reply');
    }
  }

  #logHandlerError(kind: string, err: unknown): void {
    this.#log.error({ deviceId: this.deviceId, err }, `${kind} handler for ${this.#name} failed: ${errorMessage(err)}`);
  }

  #startHeartbeat(intervalMs: number, idleMs: number): NodeJS.Timeout {
    // Activity is measured in bytes read, not whole messages: a 24 MiB frame crawling over a
    // slow link is proof of life long before its 'message' event.
    let lastBytes = this.#socket.bytesRead;
    let lastActivity = Date.now();
    const timer = setInterval(() => {
      if (this.#closed) return;
      const now = Date.now();
      const bytes = this.#socket.bytesRead;
      if (bytes !== lastBytes) {
        lastBytes = bytes;
        lastActivity = now;
      } else if (now - lastActivity >= idleMs) {
        const reason = new FerryError('PEER_UNAVAILABLE', `no data from ${this.#name} for ${Math.round((now - lastActivity) / 1000)} s`);
        this.#log.warn({ deviceId: this.deviceId }, `closing silent connection: ${reason.message}`);
        this.#finish(reason);
        this.#ws.terminate(); // a dead link cannot complete a closing handshake
        return;
      }
      try {
        this.#ws.ping();
      } catch {
        // Only throws when the socket is already closing; 'close' will follow.
      }
    }, Math.min(intervalMs, idleMs));
    timer.unref();
    return timer;
  }

  #onSocketError(err: Error): void {
    const code = (err as { code?: string }).code;
    const reason =
      code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
        ? new FerryError('MESSAGE_TOO_LARGE', `peer ${this.#name} sent a frame larger than the limit: ${err.message}`, { cause: err })
        : code?.startsWith('WS_ERR_')
          ? new FerryError('INVALID_MESSAGE', `invalid WebSocket data from ${this.#name}: ${err.message}`, { cause: err })
          : new FerryError('PEER_UNAVAILABLE', `connection to ${this.#name} failed: ${err.message}`, { cause: err });
    if (!this.#closed) this.#log.error({ deviceId: this.deviceId, remoteAddress: this.remoteAddress, err: reason }, `closing connection: ${reason.message}`);
    this.#finish(reason);
  }

  #onWsClose(code: number, text: string): void {
    if (this.#closed) return;
    const why = text ? `: ${text}` : '';
    this.#finish(
      code === 1000 || code === 1001
        ? new FerryError('CLOSED', `${this.#name} closed the connection${why}`, { data: { closeCode: code } })
        : new FerryError('PEER_UNAVAILABLE', `connection to ${this.#name} ended (WebSocket code ${code})${why}`, { data: { closeCode: code } }),
    );
  }

  /** Marks the connection closed exactly once: rejects pending requests and tells the close handlers. */
  #finish(reason: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    clearInterval(this.#heartbeat);
    this.#early = [];
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(this.#closedError());
    const handlers = this.#closeHandlers.splice(0);
    for (const handler of handlers) this.#callCloseHandler(handler);
  }

  #callCloseHandler(handler: (reason: Error | undefined) => void): void {
    try {
      const result: unknown = handler(this.#closeReason);
      if (isPromiseLike(result)) result.then(undefined, (err: unknown) => this.#logHandlerError('close', err));
    } catch (err) {
      this.#logHandlerError('close', err);
    }
  }

  #closedError(): FerryError {
    const reason = this.#closeReason;
    return new FerryError('CLOSED', `connection to ${this.#name} is closed${reason ? `: ${reason.message}` : ''}`, {
      cause: reason,
      data: { deviceId: this.deviceId },
    });
  }
}

/** WebSocket close codes (RFC 6455 §7.4.1) that tell the peer why, alongside the text. */
function closeCodeFor(reason: Error | undefined): number {
  if (reason === undefined) return 1000;
  if (isFerryError(reason, 'CLOSED')) return 1001; // going away: shutting down, replaced, ...
  if (isFerryError(reason, 'INVALID_MESSAGE')) return 1008;
  if (isFerryError(reason, 'MESSAGE_TOO_LARGE')) return 1009;
  return 1011;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** At most `maxBytes` of UTF-8, cut on a character boundary (WebSocket close reasons allow 123). */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
