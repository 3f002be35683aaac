/**
 * HTTPS client for a node's REST API with the node's certificate pinned: the TLS connection is
 * made and the device ID (SHA-256 of the certificate) checked before any request byte, and so
 * before the token, is sent. On first contact the ID is pinned (trust on first use); a changed
 * ID is refused loudly, as ssh refuses a changed host key.
 */
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';
import { deviceIdFromCertificate } from '../../core/device-id.js';
import { errorMessage } from '../../core/errors.js';
import { encodeRemotePath } from '../../api/remote-path.js';
import type { Credentials } from './credentials.js';
import { normalizeUrl } from './credentials.js';
import { RemoteError } from './remote-error.js';

/** How long an upload waits for `100 Continue` before sending its body anyway. */
const CONTINUE_WAIT_MS = 5000;

export interface ClientOptions {
  readonly url: string;
  readonly credentials: Credentials;
  readonly token?: string;
  /** Pin the node on first contact (login); otherwise a node must already be pinned. */
  readonly trustOnFirstUse?: boolean;
  /** Require exactly this device ID (e.g. `ferry login --device-id`). */
  readonly expectDeviceId?: string;
  /** Called when a node was pinned for the first time. */
  readonly onPinned?: (deviceId: string) => void;
}

export interface RequestOptions {
  readonly query?: Record<string, string | boolean | undefined>;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: Buffer | Readable;
  /** Statuses that are not errors (default: 2xx). */
  readonly accept?: (status: number) => boolean;
}

/** A client for a node logged in to: `url`, or the one logged in to last. NOT_LOGGED_IN otherwise. */
export function clientFor(credentials: Credentials, url?: string): RemoteClient {
  const login = credentials.current(url);
  return new RemoteClient({ url: login.url, credentials, token: login.token });
}

export class RemoteClient {
  readonly url: string;
  private readonly host: string;
  private readonly port: number;
  private readonly hostPort: string;
  /** The device ID seen on the last connection. */
  deviceId?: string;

  constructor(private readonly options: ClientOptions) {
    const u = normalizeUrl(options.url);
    this.url = u.url;
    this.host = u.host;
    this.port = u.port;
    this.hostPort = u.hostPort;
  }

  /**
   * Sends a request and returns the response, whose body the caller must consume. A streamed
   * body (an upload) is sent with `Expect: 100-continue` and only once the node asks for it, so
   * a refusal (no permission, a bad path, no space) costs none of it; a refusal that arrives
   * while the body is on its way stops it.
   */
  async request(method: string, apiPath: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v === undefined || v === false) continue;
      search.set(k, v === true ? '1' : v);
    }
    const path = `/api/v1/${apiPath}${search.size ? `?${search}` : ''}`;
    const headers: OutgoingHttpHeaders = { accept: 'application/json', ...opts.headers };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (Buffer.isBuffer(opts.body)) headers['content-length'] = opts.body.length;
    if (opts.body !== undefined && !Buffer.isBuffer(opts.body)) headers.expect = '100-continue';
    let req: ClientRequest | undefined;
    let fallback: NodeJS.Timeout | undefined;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req = request({
        host: this.host,
        port: this.port,
        method,
        path,
        headers,
        createConnection: ((_: unknown, cb: (err: Error | null, socket?: Duplex) => void) => {
          this.connect().then((s) => cb(null, s), (err: Error) => cb(err));
          return undefined;
        }) as never,
      });
      const sent = req;
      let answered = false;
      sent.on('response', (r) => {
        answered = true;
        clearTimeout(fallback);
        resolve(r);
      });
      sent.on('error', (err) => {
        clearTimeout(fallback);
        reject(err instanceof RemoteError ? err : new RemoteError('CONNECTION_FAILED', `cannot reach ${this.url}: ${errorMessage(err)}`, { cause: err }));
      });
      if (opts.body === undefined) sent.end();
      else if (Buffer.isBuffer(opts.body)) sent.end(opts.body);
      else {
        const body = opts.body;
        let started = false;
        const send = () => {
          clearTimeout(fallback);
          if (started || answered) return;
          started = true;
          body.pipe(sent);
        };
        body.on('error', (err) => sent.destroy(err));
        // A connection that ends before the body went out (a reset, a refusal) lets go of its source.
        sent.once('close', () => {
          if (!sent.writableFinished) body.destroy();
        });
        // A node (or a proxy) that ignores the Expect header still gets the body, a little later.
        fallback = setTimeout(send, CONTINUE_WAIT_MS);
        sent.once('continue', send);
        sent.flushHeaders();
      }
    });
    const ok = opts.accept ?? ((s: number) => s >= 200 && s < 300);
    if (!ok(res.statusCode ?? 0)) {
      const err = await errorFrom(res);
      // A refusal while the body is on its way: stop sending it (the request stays unfinished).
      if (!req!.writableEnded) req!.destroy();
      throw err;
    }
    return res;
  }

  /** A JSON request; returns the parsed body. */
  async json<T>(method: string, apiPath: string, opts: RequestOptions & { json?: unknown } = {}): Promise<T> {
    const body = opts.json === undefined ? opts.body : Buffer.from(JSON.stringify(opts.json));
    const headers = opts.json === undefined ? opts.headers : { 'content-type': 'application/json', ...opts.headers };
    const res = await this.request(method, apiPath, { ...opts, ...(body ? { body } : {}), ...(headers ? { headers } : {}) });
    const text = await readText(res);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new RemoteError('BAD_RESPONSE', `${this.url} answered with something that is not JSON`);
    }
  }

  /** The TLS connection, with the node's certificate checked against the pin. */
  private connect(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: this.host,
        port: this.port,
        servername: /^[\d.:]+$/.test(this.host) ? undefined : this.host,
        // Nodes have self-signed certificates: the pinned device ID is the trust decision.
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
        minVersion: 'TLSv1.3',
      });
      socket.setTimeout(30_000, () => socket.destroy(new RemoteError('CONNECTION_FAILED', `${this.url} did not answer within 30 s`)));
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        socket.off('error', reject);
        socket.setTimeout(0);
        try {
          const cert = socket.getPeerCertificate();
          if (!cert?.raw) throw new RemoteError('CERTIFICATE_CHANGED', `${this.url} presented no certificate`);
          const id = deviceIdFromCertificate(cert.raw);
          this.checkPin(id);
          this.deviceId = id;
          resolve(socket);
        } catch (err) {
          socket.destroy();
          reject(err);
        }
      });
    });
  }

  private checkPin(id: string): void {
    const { credentials, expectDeviceId, trustOnFirstUse } = this.options;
    if (expectDeviceId && expectDeviceId !== id) {
      throw new RemoteError('CERTIFICATE_CHANGED', `${this.url} is device ${id}, not the expected ${expectDeviceId}`);
    }
    const pinned = credentials.pinned(this.hostPort);
    if (pinned === id) return;
    if (pinned) {
      throw new RemoteError(
        'CERTIFICATE_CHANGED',
        [
          '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
          '@    WARNING: THE NODE IDENTITY HAS CHANGED!              @',
          '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
          `The node at ${this.hostPort} presented device ID`,
          `  ${id}`,
          'but the one pinned on first use is',
          `  ${pinned}`,
          'Someone may be intercepting the connection, or the node was reinstalled. Nothing was sent.',
          `If you know the node changed, run \`ferry logout ${this.url} --forget-node\` and log in again.`,
        ].join('\n'),
      );
    }
    if (!trustOnFirstUse) throw new RemoteError('NOT_LOGGED_IN', `${this.hostPort} is not a known node: run \`ferry login ${this.url}\` first`);
    credentials.pin(this.hostPort, id);
    this.options.onPinned?.(id);
  }
}

/** The URL path tail for a remote path, encoded segment by segment. */
export function apiPath(prefix: string, folder: string, path: string): string {
  return `${prefix}/${encodeRemotePath(folder, path)}`;
}

export async function readText(res: IncomingMessage, limit = 64 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > limit) throw new RemoteError('BAD_RESPONSE', 'the response is too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function errorFrom(res: IncomingMessage): Promise<RemoteError> {
  const status = res.statusCode ?? 0;
  let text = '';
  try {
    text = await readText(res, 1024 * 1024);
  } catch {
    /* keep what we have */
  }
  try {
    const v = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (v.error?.code) return new RemoteError(v.error.code, v.error.message ?? v.error.code, { status });
  } catch {
    /* not JSON */
  }
  return new RemoteError('BAD_RESPONSE', `the node answered HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, { status });
}
