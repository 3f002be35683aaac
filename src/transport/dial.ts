/**
 * Connecting to a peer: TLS with this node's certificate, then a WebSocket upgrade on
 * PEER_PATH. The server's certificate is self-signed, so TLS verification is off and the
 * pinning is done here instead: the device ID computed from the server's certificate must be
 * the one we meant to reach, checked after the handshake and before a single byte of HTTP
 * is written to the socket.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { deviceIdFromCertificate, parseDeviceId } from '../core/device-id.js';
import { FerryError, errorMessage, isFerryError } from '../core/errors.js';
import { formatHostPort, parseHostPort } from './address.js';
import { MAX_FRAME_BYTES } from './frame.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';
import { PEER_PATH } from './peer-server.js';
import { WsPeerConnection, type ConnectionOptions } from './ws-connection.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export interface DialOptions extends ConnectionOptions {
  /** "host:port" or "[ipv6]:port". */
  readonly address: string;
  readonly expectedDeviceId: string;
  readonly identity: Identity;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
  /** Budget for TCP connect, TLS handshake and upgrade together. */
  readonly connectTimeoutMs?: number;
}

/**
 * Resolves with an open, verified connection. Rejects with PEER_UNAVAILABLE (unreachable,
 * timed out, not a Ferry node), UNKNOWN_DEVICE (the server is another device, or it does not
 * accept ours), INVALID_CONFIG (bad address or device ID), or the signal's reason.
 */
export async function dialPeer(options: DialOptions): Promise<WsPeerConnection> {
  const { host, port } = parseHostPort(options.address);
  const expected = parseDeviceId(options.expectedDeviceId);
  const { signal } = options;
  signal?.throwIfAborted();
  const address = formatHostPort(host, port);
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  const socket = tlsConnect({
    host,
    port,
    servername: isIP(host) ? undefined : host, // SNI must not carry an IP address
    key: options.identity.keyPem,
    cert: options.identity.certPem,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  let ws: WebSocket | undefined;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const onSocketError = (err: Error): void => fail(unavailable(address, err));
  const onAbort = (): void => fail(signal!.reason);
  let resolveDial!: (connection: WsPeerConnection) => void;
  let rejectDial!: (err: unknown) => void;
  const dialed = new Promise<WsPeerConnection>((resolve, reject) => {
    resolveDial = resolve;
    rejectDial = reject;
  });
  const cleanup = (): void => {
    settled = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    socket.off('error', onSocketError);
    ws?.off('error', onSocketError);
  };
  function fail(err: unknown): void {
    if (settled) return;
    cleanup();
    // Late errors from the sockets being torn down must not become uncaught exceptions.
    socket.on('error', () => {});
    ws?.on('error', () => {});
    ws?.terminate();
    socket.destroy();
    rejectDial(err);
  }

  timer = setTimeout(() => fail(new FerryError('PEER_UNAVAILABLE', `timed out connecting to ${address} after ${timeoutMs} ms`, { data: { address } })), timeoutMs);
  signal?.addEventListener('abort', onAbort, { once: true });
  socket.on('error', onSocketError);
  socket.once('secureConnect', () => {
    if (settled) return;
    const raw = socket.getPeerCertificate()?.raw;
    const actual = raw ? deviceIdFromCertificate(raw) : undefined;
    if (actual !== expected) {
      fail(
        new FerryError('UNKNOWN_DEVICE', `peer at ${address} presented device ID ${actual ?? '(no certificate)'}, expected ${expected}`, {
          data: { address, expected, actual },
        }),
      );
      return;
    }
    const upgraded = upgrade(socket, host, port);
    ws = upgraded;
    upgraded.on('error', onSocketError);
    upgraded.once('unexpected-response', (_req, res) => void refusal(res, address, options.identity.deviceId).then(fail));
    upgraded.once('open', () => {
      if (settled) return;
      cleanup();
      // Built synchronously here, so a frame the server sends right away finds its listener.
      const { logger, requestTimeoutMs, heartbeatIntervalMs, idleTimeoutMs } = options;
      resolveDial(
        new WsPeerConnection({ ws: upgraded, socket, deviceId: expected, remoteAddress: address, logger, requestTimeoutMs, heartbeatIntervalMs, idleTimeoutMs }),
      );
    });
  });
  return dialed;
}

function upgrade(socket: TLSSocket, host: string, port: number): WebSocket {
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return new WebSocket(`wss://${urlHost}:${port}${PEER_PATH}`, {
    createConnection: () => socket,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false, // payloads are zstd-compressed where that pays
    // Masking defends browsers' proxies from cache poisoning; inside TLS between two Ferry
    // nodes it only costs a copy of every outgoing frame, and ws skips it for a zero mask.
    generateMask: (mask: Buffer) => void mask.fill(0),
  });
}

/** The error for a server that answered the upgrade with an HTTP status instead. */
async function refusal(res: IncomingMessage, address: string, ourDeviceId: string): Promise<FerryError> {
  const status = res.statusCode ?? 0;
  const detail = await readErrorMessage(res);
  res.destroy();
  if (status === 401 || status === 403) {
    return new FerryError('UNKNOWN_DEVICE', `peer at ${address} refused this device (${ourDeviceId}): ${detail ?? `HTTP ${status}`}`, {
      data: { address, status },
    });
  }
  // A Ferry node always says why; a bare status comes from something else.
  return new FerryError('PEER_UNAVAILABLE', `peer at ${address} answered HTTP ${status}${detail ? `: ${detail}` : ' (is it a Ferry node?)'}`, {
    data: { address, status },
  });
}

async function readErrorMessage(res: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_ERROR_BODY_BYTES) return undefined;
      chunks.push(chunk);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { message?: unknown } };
    return typeof body.error?.message === 'string' ? body.error.message : undefined;
  } catch {
    return undefined;
  }
}

function unavailable(address: string, err: Error): FerryError {
  if (isFerryError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new FerryError('PEER_UNAVAILABLE', `cannot connect to ${address}: ${errorMessage(err)}`, { cause: err, data: { address, errno: code } });
}
