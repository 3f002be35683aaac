/**
 * The node's one listening port: an HTTPS server that asks every client for a certificate.
 * Peers upgrade to a WebSocket on PEER_PATH and are let in only when `authorize` accepts the
 * device ID computed from their certificate; every other HTTP request is handed to
 * `handleRequest`, where the REST API, web UI and WebDAV plug in later. Trust is decided
 * here, before the WebSocket exists, so an unknown device never reaches the protocol.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { deviceIdFromCertificate } from '../core/device-id.js';
import { FerryError, errorMessage } from '../core/errors.js';
import { formatHostPort, type HostPort } from './address.js';
import { MAX_FRAME_BYTES } from './frame.js';
import type { Identity } from './identity.js';
import { silentLogger, type Logger } from './logger.js';
import { WsPeerConnection, type ConnectionOptions } from './ws-connection.js';

export const PEER_PATH = '/ferry/peer/v1';
/** How long close() lets peers answer the WebSocket closing handshake before cutting sockets. */
const CLOSE_GRACE_MS = 1000;

export interface PeerServerOptions extends ConnectionOptions {
  readonly identity: Identity;
  /** Interface to listen on; default all (IPv6 and IPv4 where the OS allows). */
  readonly host?: string;
  /** 0 picks a free port; see PeerServer.address for the one chosen. */
  readonly port: number;
  /** Whether a device may connect. Called for every peer upgrade, after its certificate was checked. */
  authorize(deviceId: string, remoteAddress: string): boolean | Promise<boolean>;
  /** Receives each accepted connection; set its handlers before returning. */
  onConnection(connection: WsPeerConnection): void;
  /** A device that authorize refused, e.g. to offer it to the user as "pending". */
  onRefused?(deviceId: string, remoteAddress: string): void;
  /** Whether an authorized device is paused here: refused with 503 PAUSED until resumed. */
  paused?(deviceId: string): boolean;
  /**
   * Plain HTTP requests (anything that is not a peer upgrade). Default: 404 JSON.
   * `expectsContinue`: the client sent `Expect: 100-continue` and waits for `res.writeContinue()`
   * before sending its body, so a request the handler refuses costs no body.
   */
  handleRequest?(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void;
  /** WebSocket upgrades on paths other than PEER_PATH. Default: 404. */
  handleUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export class PeerServer {
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #options: PeerServerOptions;
  readonly #log: Logger;
  readonly #connections = new Set<WsPeerConnection>();
  /** Sockets in the upgrade path or upgraded, which server.close() would otherwise wait for. */
  readonly #sockets = new Set<Duplex>();
  #closing: Promise<void> | undefined;

  private constructor(server: Server, options: PeerServerOptions) {
    this.#server = server;
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  }

  static async open(options: PeerServerOptions): Promise<PeerServer> {
    const server = createServer({
      key: options.identity.keyPem,
      cert: options.identity.certPem,
      requestCert: true,
      // Certificates are self-signed; the device ID pinned by authorize() is the trust decision.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const peerServer = new PeerServer(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => peerServer.#request(req, res, false));
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => peerServer.#request(req, res, true));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void peerServer.#upgrade(req, socket, head));
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      peerServer.#log.debug({ err, remoteAddress: socket.remoteAddress }, `TLS handshake failed: ${err.message}`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.host, port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      const where = formatHostPort(options.host ?? '::', options.port);
      throw new FerryError('IO_ERROR', `cannot listen on ${where}: ${errorMessage(err)}`, { cause: err });
    });
    server.on('error', (err) => peerServer.#log.error({ err }, `peer server error: ${err.message}`));
    return peerServer;
  }

  /** The address actually bound (port 0 resolved). */
  get address(): HostPort {
    const info = this.#server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  /** Connections accepted and not yet closed. */
  get connections(): ReadonlySet<WsPeerConnection> {
    return this.#connections;
  }

  /** Stops listening and closes every connection; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const reason = new FerryError('CLOSED', 'the node is shutting down');
    for (const connection of this.#connections) connection.close(reason);
    this.#server.closeAllConnections();
    const grace = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, CLOSE_GRACE_MS);
    await stopped;
    clearTimeout(grace);
  }

  #request(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const handler = this.#options.handleRequest;
    if (handler === undefined) {
      sendJsonError(res, 404, 'NOT_FOUND', `no such resource: ${req.method} ${req.url}`);
      return;
    }
    try {
      handler(req, res, expectsContinue);
    } catch (err) {
      this.#log.error({ err }, `request handler failed: ${errorMessage(err)}`);
      if (!res.headersSent) sendJsonError(res, 500, 'IO_ERROR', 'internal error');
      else res.destroy();
    }
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Node takes its own error listener off an upgraded socket; without one, a reset while
    // authorize() runs would be an uncaught exception.
    socket.on('error', (err) => this.#log.debug({ err }, `peer socket error: ${err.message}`));
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    try {
      const path = new URL(req.url ?? '/', 'https://ferry.invalid').pathname;
      if (path !== PEER_PATH) {
        if (this.#options.handleUpgrade) this.#options.handleUpgrade(req, socket, head);
        else refuse(socket, 404, 'NOT_FOUND', `no WebSocket endpoint at ${path}`);
        return;
      }
      if (this.#closing) return refuse(socket, 503, 'CLOSED', 'the node is shutting down');
      const tls = socket as TLSSocket;
      const remoteAddress = formatHostPort(tls.remoteAddress ?? '?', tls.remotePort ?? 0);
      const cert = tls.getPeerCertificate();
      if (!cert?.raw) {
        return refuse(socket, 401, 'UNKNOWN_DEVICE', 'peer connections need a client certificate');
      }
      const deviceId = deviceIdFromCertificate(cert.raw);
      if (!(await this.#options.authorize(deviceId, remoteAddress))) {
        this.#log.warn({ deviceId, remoteAddress }, `refused connection from unknown device ${deviceId} at ${remoteAddress}`);
        try {
          this.#options.onRefused?.(deviceId, remoteAddress);
        } catch (err) {
          this.#log.error({ err }, `onRefused handler failed: ${errorMessage(err)}`);
        }
        return refuse(socket, 403, 'UNKNOWN_DEVICE', `device ${deviceId} is not known to this node`);
      }
      if (this.#options.paused?.(deviceId)) {
        this.#log.debug({ deviceId, remoteAddress }, `refused connection from paused device ${deviceId}`);
        return refuse(socket, 503, 'PAUSED', 'this device is paused on that node (`ferry peer resume` there lets it in)');
      }
      if (socket.destroyed) return;
      if (this.#closing) return refuse(socket, 503, 'CLOSED', 'the node is shutting down');
      this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.#accept(ws, tls, deviceId, remoteAddress));
    } catch (err) {
      this.#log.error({ err }, `peer upgrade failed: ${errorMessage(err)}`);
      refuse(socket, 500, 'IO_ERROR', 'internal error');
    }
  }

  #accept(ws: WebSocket, socket: TLSSocket, deviceId: string, remoteAddress: string): void {
    const { logger, requestTimeoutMs, heartbeatIntervalMs, idleTimeoutMs } = this.#options;
    const connection = new WsPeerConnection({ ws, socket, deviceId, remoteAddress, logger, requestTimeoutMs, heartbeatIntervalMs, idleTimeoutMs });
    this.#connections.add(connection);
    connection.onClose(() => this.#connections.delete(connection));
    this.#log.info({ deviceId, remoteAddress }, `accepted connection from ${deviceId} at ${remoteAddress}`);
    try {
      this.#options.onConnection(connection);
    } catch (err) {
      this.#log.error({ err, deviceId }, `onConnection handler failed: ${errorMessage(err)}`);
      connection.close(new FerryError('CLOSED', 'the node could not set up the connection'));
    }
  }
}

function sendJsonError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers an upgrade request with a JSON error and closes the socket once it is written. */
function refuse(socket: Duplex, status: number, code: string, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code, message } });
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' }[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}
