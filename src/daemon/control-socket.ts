/**
 * The node's local control socket: HTTP over the Unix socket `<home>/control.sock`. Only users
 * who can open the home directory reach it. The CLI uses it for what needs the running node
 * itself (a rescan now, its live status); configuration goes through the database, which works without it.
 *
 *   POST /v1/rescan[?folder=ID ...]  → {folders: [{id, entries, hashed, changed, errors, ms}]}
 *   GET  /v1/status                  → the node's runtime status (what it publishes to the index)
 *   POST /v1/override?folder=ID      → {paths}: a send-only folder's state wins over its peers' changes
 *   POST /v1/revert?folder=ID        → {paths}: a receive-only folder's own changes are thrown away
 *
 * Errors are `{error: {code, message}}` with the FerryError code.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { errorMessage, FerryError, isFerryError } from '../core/errors.js';
import type { ScanSummary } from '../engine/scanner.js';
import type { NodeRuntimeStatus } from './node-status.js';

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

export const controlSocketPath = (home: string) => join(home, 'control.sock');

export interface ControlHandlers {
  rescan(folderIds: readonly string[]): Promise<({ id: string } & ScanSummary)[]>;
  status(): NodeRuntimeStatus;
  /** `ferry folder override` / `ferry folder revert`: the paths it changed. */
  settle(action: 'override' | 'revert', folderId: string): Promise<string[]>;
}

export class ControlSocket {
  private constructor(private readonly server: Server, private readonly path: string) {}

  /**
   * Listens on the home's socket; refuses when another node runs with the same home. A home
   * whose path is too long for a Unix socket gets no control socket (undefined): the node runs,
   * without `folder rescan` and without that check.
   */
  static async listen(home: string, handlers: ControlHandlers, logger?: { warn(msg: string): void }): Promise<ControlSocket | undefined> {
    const path = controlSocketPath(home);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      logger?.warn(`the home directory path is too long for a control socket (${path}); \`ferry folder rescan\` will not reach this node`);
      return undefined;
    }
    if (existsSync(path)) {
      if (await answers(path)) throw new FerryError('ALREADY_RUNNING', `another Ferry node is running with the home ${home}`);
      unlinkSync(path); // left behind by a node that did not stop cleanly
    }
    const server = createServer((req, res) => void route(req, res, handlers));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return new ControlSocket(server, path);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

async function route(req: IncomingMessage, res: ServerResponse, handlers: ControlHandlers): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://node');
  try {
    if (url.pathname === '/v1/status' && req.method === 'GET') return reply(res, 200, handlers.status());
    const action = url.pathname.slice('/v1/'.length);
    if (action !== 'rescan' && action !== 'override' && action !== 'revert') throw new FerryError('NOT_FOUND', `no such control request: ${url.pathname}`);
    if (req.method !== 'POST') throw new FerryError('INVALID_CONFIG', `${action} needs POST`);
    if (action === 'rescan') return reply(res, 200, { folders: await handlers.rescan(url.searchParams.getAll('folder')) });
    reply(res, 200, { paths: await handlers.settle(action, url.searchParams.get('folder') ?? '') });
  } catch (err) {
    const code = isFerryError(err) ? err.code : 'IO_ERROR';
    reply(res, code === 'NOT_FOUND' || code === 'UNKNOWN_FOLDER' ? 404 : isFerryError(err) ? 400 : 500, { error: { code, message: errorMessage(err) } });
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function checkLength(path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new FerryError('INVALID_CONFIG', `the home directory path is too long for the control socket ${path} (at most ${MAX_SOCKET_PATH} bytes)`);
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Sends one request to the node running with `home`; NOT_RUNNING when there is none. With
 * `timeoutMs`, a node that does not answer in time fails the request (IO_ERROR).
 */
export async function callNode<T>(home: string, method: string, path: string, timeoutMs?: number): Promise<T> {
  const socketPath = controlSocketPath(home);
  checkLength(socketPath);
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new FerryError('NOT_RUNNING', `no Ferry node is running with the home ${home} (start it with \`ferry start\`)`));
      } else reject(err);
    });
    req.on('timeout', () => req.destroy(new FerryError('IO_ERROR', `the node running with the home ${home} did not answer within ${timeoutMs} ms`)));
    req.end();
  });
  const parsed = JSON.parse(body) as T & { error?: { code: string; message: string } };
  if (status !== 200) {
    const e = parsed.error;
    throw new FerryError((e?.code ?? 'IO_ERROR') as FerryError['code'], e?.message ?? `the node answered ${status}`);
  }
  return parsed;
}
