/**
 * Transport tests over real TLS on 127.0.0.1 (port 0): identity pinning, messages and
 * requests both ways, large and compressed payloads, and a hostile or broken peer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FerryError, isFerryError } from '../core/errors.js';
import type { Message } from '../protocol/connection.js';
import { dialPeer, type DialOptions } from './dial.js';
import { MAX_FRAME_BYTES } from './frame.js';
import { createIdentity, type Identity } from './identity.js';
import type { Logger } from './logger.js';
import { PEER_PATH, PeerServer, type PeerServerOptions } from './peer-server.js';
import type { WsPeerConnection } from './ws-connection.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

interface LogEntry {
  readonly level: string;
  readonly message: string;
}
type RecordingLogger = Logger & { readonly entries: LogEntry[]; text(level?: string): string };

function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const at = (level: string) => (obj: unknown, message?: string) => {
    entries.push({ level, message: typeof obj === 'string' ? obj : (message ?? '') });
  };
  return {
    entries,
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    text: (level) =>
      entries
        .filter((e) => level === undefined || e.level === level)
        .map((e) => e.message)
        .join('\n'),
  };
}

let identities: Promise<Identity[]> | undefined;
/** server, client, stranger: made once, since key generation is the slow part. */
function testIdentities(): Promise<Identity[]> {
  identities ??= Promise.all(['server', 'client', 'stranger'].map((n) => createIdentity(n)));
  return identities;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Pair {
  server: PeerServer;
  serverIdentity: Identity;
  clientIdentity: Identity;
  accepted: WsPeerConnection;
  dialed: WsPeerConnection;
  serverLog: RecordingLogger;
  clientLog: RecordingLogger;
}

async function openServer(options: Partial<PeerServerOptions> = {}): Promise<{ server: PeerServer; log: RecordingLogger; accepted: Promise<WsPeerConnection> }> {
  const [serverIdentity, clientIdentity] = await testIdentities();
  const log = recordingLogger();
  let accept!: (c: WsPeerConnection) => void;
  const accepted = new Promise<WsPeerConnection>((r) => (accept = r));
  const server = await PeerServer.open({
    identity: serverIdentity!,
    host: '127.0.0.1',
    port: 0,
    logger: log,
    authorize: (id) => id === clientIdentity!.deviceId,
    ...options,
    onConnection: (c) => {
      options.onConnection?.(c);
      accept(c);
    },
  });
  cleanups.push(() => server.close());
  return { server, log, accepted };
}

async function connectedPair(serverOptions: Partial<PeerServerOptions> = {}, dialOptions: Partial<DialOptions> = {}): Promise<Pair> {
  const [serverIdentity, clientIdentity] = await testIdentities();
  const { server, log: serverLog, accepted } = await openServer(serverOptions);
  const clientLog = recordingLogger();
  const dialed = await dialPeer({
    address: `127.0.0.1:${server.address.port}`,
    expectedDeviceId: serverIdentity!.deviceId,
    identity: clientIdentity!,
    logger: clientLog,
    ...dialOptions,
  });
  cleanups.push(() => dialed.close());
  return { server, serverIdentity: serverIdentity!, clientIdentity: clientIdentity!, accepted: await accepted, dialed, serverLog, clientLog };
}

/** A raw WebSocket client holding the client's certificate, to send what Ferry never would. */
async function rawClient(port: number, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const [, clientIdentity] = await testIdentities();
  const ws = new WebSocket(`wss://127.0.0.1:${port}${PEER_PATH}`, {
    key: clientIdentity!.keyPem,
    cert: clientIdentity!.certPem,
    rejectUnauthorized: false,
    perMessageDeflate: false,
    maxPayload: 64 << 20,
    ...options,
  });
  cleanups.push(() => ws.terminate());
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return ws;
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

function whenClosed(connection: WsPeerConnection): Promise<Error | undefined> {
  return new Promise((resolve) => connection.onClose(resolve));
}

function nextMessage(connection: WsPeerConnection): Promise<Message> {
  return new Promise((resolve) => connection.onMessage(resolve));
}

async function echo(message: Message): Promise<Message> {
  return { header: { echo: message.header }, ...(message.payload ? { payload: message.payload } : {}) };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise;
  } catch (err) {
    if (isFerryError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('transport (real TLS on 127.0.0.1)', () => {
  it('pins device IDs: both sides see the ID the other computed from its own identity', async () => {
    const p = await connectedPair();
    expect(p.accepted.deviceId).toBe(p.clientIdentity.deviceId);
    expect(p.dialed.deviceId).toBe(p.serverIdentity.deviceId);
    expect(p.accepted.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(p.dialed.remoteAddress).toBe(`127.0.0.1:${p.server.address.port}`);
    expect(p.server.connections.has(p.accepted)).toBe(true);
  });

  it('exchanges messages and requests in both directions', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(async (m) => ({ header: { from: 'server', n: (m.header.n as number) + 1 } }));
    p.dialed.onRequest(async (m) => ({ header: { from: 'client', n: (m.header.n as number) * 2 }, payload: Buffer.from('pong') }));

    const toServer = nextMessage(p.accepted);
    p.dialed.send({ header: { hello: 'server' }, payload: Buffer.from([1, 2, 3]) });
    const received = await toServer;
    expect(received.header).toEqual({ hello: 'server' });
    expect(received.payload).toEqual(Buffer.from([1, 2, 3]));

    const toClient = nextMessage(p.dialed);
    p.accepted.send({ header: { hello: 'client' } });
    expect((await toClient).header).toEqual({ hello: 'client' });
    expect((await toClient).payload).toBeUndefined();

    const replies = await Promise.all([
      p.dialed.request({ header: { n: 1 } }),
      p.accepted.request({ header: { n: 21 } }),
      ...Array.from({ length: 50 }, (_, i) => p.dialed.request({ header: { n: i } })),
    ]);
    expect(replies[0]!.header).toEqual({ from: 'server', n: 2 });
    expect(replies[1]!.header).toEqual({ from: 'client', n: 42 });
    expect(replies[1]!.payload!.toString()).toBe('pong');
    replies.slice(2).forEach((r, i) => expect(r.header.n).toBe(i + 1));
  });

  it('delivers frames that arrive before the handlers are set, in order', async () => {
    const p = await connectedPair({
      onConnection: (c) => {
        c.onRequest(echo);
        c.send({ header: { early: 1 } });
        c.send({ header: { early: 2 } });
      },
    });
    await new Promise((r) => setTimeout(r, 50));
    const got: unknown[] = [];
    const both = new Promise<void>((resolve) =>
      p.dialed.onMessage((m) => {
        got.push(m.header.early);
        if (got.length === 2) resolve();
      }),
    );
    await both;
    expect(got).toEqual([1, 2]);
  });

  it('keeps answering requests while messages wait for a handler that is never set', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(echo);
    p.dialed.send({ header: { unheard: true } });
    expect((await p.dialed.request({ header: { a: 1 } })).header).toEqual({ echo: { a: 1 } });
    expect((await p.dialed.request({ header: { a: 2 } })).header).toEqual({ echo: { a: 2 } });
  });

  it('round-trips a 16 MiB payload byte for byte', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(echo);
    const data = randomBytes(16 << 20);
    const reply = await p.dialed.request({ header: { big: true }, payload: data });
    expect(reply.payload!.length).toBe(data.length);
    expect(sha256(reply.payload!)).toBe(sha256(data));
  });

  it('compresses what compresses and does not inflate what does not (wire bytes)', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(async (m) => ({ header: { size: m.payload!.length, sum: sha256(m.payload!) } }));
    const text = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `line ${i % 977} of a log file\n`).join('')).subarray(0, 4 << 20);
    const before = p.dialed.stats.bytesOut;
    const reply = await p.dialed.request({ header: {}, payload: text });
    const sent = p.dialed.stats.bytesOut - before;
    expect(reply.header).toEqual({ size: text.length, sum: sha256(text) });
    expect(sent).toBeLessThan(text.length / 8);

    const random = randomBytes(4 << 20);
    const before2 = p.dialed.stats.bytesOut;
    await p.dialed.request({ header: {}, payload: random });
    const sent2 = p.dialed.stats.bytesOut - before2;
    expect(sent2).toBeGreaterThanOrEqual(random.length);
    expect(sent2).toBeLessThan(random.length * 1.01);

    // compress: false is honoured and does not reach the peer.
    let seenHeader: Record<string, unknown> | undefined;
    p.accepted.onRequest(async (m) => ((seenHeader = m.header), { header: {} }));
    const before3 = p.dialed.stats.bytesOut;
    await p.dialed.request({ header: { compress: false, x: 1 }, payload: text });
    expect(p.dialed.stats.bytesOut - before3).toBeGreaterThanOrEqual(text.length);
    expect(seenHeader).toEqual({ x: 1 });
    expect(p.accepted.stats.bytesIn).toBeGreaterThan(text.length);
  });

  it('refuses an unknown device: 403 before any upgrade, a clear error for the dialer', async () => {
    const [serverIdentity, , stranger] = await testIdentities();
    const refused: string[] = [];
    let connections = 0;
    const { server, log } = await openServer({ onRefused: (id) => refused.push(id), onConnection: () => connections++ });
    const err = await rejection(dialPeer({ address: `127.0.0.1:${server.address.port}`, expectedDeviceId: serverIdentity!.deviceId, identity: stranger! }));
    expect(err.code).toBe('UNKNOWN_DEVICE');
    expect(err.message).toContain('refused this device');
    expect(err.message).toContain(stranger!.deviceId);
    expect(refused).toEqual([stranger!.deviceId]);
    expect(connections).toBe(0);
    expect(log.text('warn')).toContain(`refused connection from unknown device ${stranger!.deviceId}`);
  });

  it('refuses a paused device with 503 PAUSED, which the dialer reports as unavailable (not as an identity problem); nothing is pending', async () => {
    const [serverIdentity, clientIdentity] = await testIdentities();
    const refused: string[] = [];
    let paused = true;
    let connections = 0;
    const { server, log } = await openServer({ paused: () => paused, onRefused: (id) => refused.push(id), onConnection: () => connections++ });
    const dial = () => dialPeer({ address: `127.0.0.1:${server.address.port}`, expectedDeviceId: serverIdentity!.deviceId, identity: clientIdentity! });
    const err = await rejection(dial());
    expect(err.code).toBe('PEER_UNAVAILABLE');
    expect(err.message).toMatch(/answered HTTP 503: this device is paused on that node/);
    expect(err.message).not.toContain('is it a Ferry node');
    expect([refused, connections, log.text('warn')]).toEqual([[], 0, '']);
    paused = false;
    (await dial()).close();
    expect(connections).toBe(1);
  });

  it('accepts an async authorize, and survives one that throws', async () => {
    const [serverIdentity, clientIdentity] = await testIdentities();
    let calls = 0;
    const { server, log } = await openServer({
      authorize: async () => {
        if (calls++ === 0) throw new Error('config store unavailable');
        return true;
      },
    });
    const dial = () => dialPeer({ address: `127.0.0.1:${server.address.port}`, expectedDeviceId: serverIdentity!.deviceId, identity: clientIdentity! });
    const err = await rejection(dial());
    expect(err.code).toBe('PEER_UNAVAILABLE');
    expect(err.message).toContain('HTTP 500');
    expect(log.text('error')).toContain('config store unavailable');
    const conn = await dial();
    cleanups.push(() => conn.close());
    expect(conn.closed).toBe(false);
  });

  it('answers 401 to a peer upgrade without a client certificate and 404 JSON to other requests', async () => {
    const { server } = await openServer();
    const get = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: server.address.port, path, rejectUnauthorized: false, headers }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const upgrade = await get(PEER_PATH, { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64') });
    expect(upgrade.status).toBe(401);
    const other = await get('/rest/status');
    expect(other.status).toBe(404);
    expect(JSON.parse(other.body)).toEqual({ error: { code: 'NOT_FOUND', message: expect.stringContaining('/rest/status') } });
  });

  it('fails with UNKNOWN_DEVICE when the server is not the device we expected', async () => {
    const [, clientIdentity, stranger] = await testIdentities();
    let upgrades = 0;
    const { server } = await openServer({ authorize: () => (upgrades++, true) });
    const err = await rejection(dialPeer({ address: `127.0.0.1:${server.address.port}`, expectedDeviceId: stranger!.deviceId, identity: clientIdentity! }));
    expect(err.code).toBe('UNKNOWN_DEVICE');
    expect(err.message).toMatch(/presented device ID [A-Z2-7-]+, expected/);
    await new Promise((r) => setTimeout(r, 50));
    expect(upgrades).toBe(0); // no HTTP request reached the wrong server
  });

  it('reports an unreachable peer as PEER_UNAVAILABLE, and a silent one after the connect timeout', async () => {
    const [serverIdentity, clientIdentity] = await testIdentities();
    const base = { expectedDeviceId: serverIdentity!.deviceId, identity: clientIdentity! };
    const closedPort = await freePort();
    expect((await rejection(dialPeer({ ...base, address: `127.0.0.1:${closedPort}` }))).code).toBe('PEER_UNAVAILABLE');
    // A TCP server that never speaks TLS.
    const mute = createNetServer((socket) => socket.resume()); // reads, so it sees the dialer hang up
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => mute.close(() => r())));
    const port = (mute.address() as { port: number }).port;
    const err = await rejection(dialPeer({ ...base, address: `127.0.0.1:${port}`, connectTimeoutMs: 200 }));
    expect(err.code).toBe('PEER_UNAVAILABLE');
    expect(err.message).toContain('timed out');
    const aborted = dialPeer({ ...base, address: `127.0.0.1:${port}`, signal: AbortSignal.timeout(50) });
    await expect(aborted).rejects.toHaveProperty('name', 'TimeoutError');
    expect((await rejection(dialPeer({ ...base, address: 'no-port' }))).code).toBe('INVALID_CONFIG');
  });

  it('connects over IPv6 ([::1]:port) where the host has it', async (ctx) => {
    const [serverIdentity, clientIdentity] = await testIdentities();
    let server: PeerServer;
    try {
      server = await PeerServer.open({ identity: serverIdentity!, host: '::1', port: 0, authorize: () => true, onConnection: (c) => c.onRequest(echo) });
    } catch {
      ctx.skip(); // no IPv6 loopback in this environment
      return;
    }
    cleanups.push(() => server.close());
    const conn = await dialPeer({ address: `[::1]:${server.address.port}`, expectedDeviceId: serverIdentity!.deviceId, identity: clientIdentity! });
    cleanups.push(() => conn.close());
    expect(conn.remoteAddress).toBe(`[::1]:${server.address.port}`);
    expect((await conn.request({ header: { v6: true } })).header).toEqual({ echo: { v6: true } });
  });

  it('sends a request handler error to the requester with its code and message; no crash on throws', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(async (m) => {
      if (m.header.op === 'missing') throw new FerryError('NOT_FOUND', 'block 3fa9 not found');
      if (m.header.op === 'sync-throw') return (undefined as unknown as { x: () => Message }).x();
      throw new Error('a bug');
    });
    const notFound = await rejection(p.dialed.request({ header: { op: 'missing' } }));
    expect(notFound.code).toBe('NOT_FOUND');
    expect(notFound.message).toBe('block 3fa9 not found');
    expect((await rejection(p.dialed.request({ header: { op: 'sync-throw' } }))).code).toBe('IO_ERROR');
    expect((await rejection(p.dialed.request({ header: { op: 'bug' } }))).message).toBe('a bug');
    expect(p.serverLog.text('error')).toContain('a bug');

    // A throwing message handler is logged, and the connection carries on.
    p.accepted.onMessage(() => {
      throw new Error('handler exploded');
    });
    p.dialed.send({ header: {} });
    p.accepted.onRequest(echo);
    expect((await p.dialed.request({ header: { still: 'alive' } })).header).toEqual({ echo: { still: 'alive' } });
    expect(p.serverLog.text('error')).toContain('handler exploded');
    expect(p.accepted.closed).toBe(false);
  });

  it('times out a request, honours an AbortSignal, and refuses to send an oversized frame', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(() => new Promise(() => {}));
    const timedOut = await rejection(p.dialed.request({ header: {} }, { timeoutMs: 100 }));
    expect(timedOut.code).toBe('PEER_UNAVAILABLE');
    expect(timedOut.message).toContain('timed out after 100 ms');
    const controller = new AbortController();
    const aborted = p.dialed.request({ header: {} }, { signal: controller.signal });
    controller.abort(new Error('user cancelled'));
    await expect(aborted).rejects.toThrow('user cancelled');
    expect(() => p.dialed.send({ header: {}, payload: Buffer.alloc(MAX_FRAME_BYTES) })).toThrow(/limit/);
    expect((await rejection(p.dialed.request({ header: {}, payload: Buffer.alloc(MAX_FRAME_BYTES) }))).code).toBe('MESSAGE_TOO_LARGE');
    expect(p.dialed.closed).toBe(false);
  });

  it('rejects pending requests with CLOSED when either side closes', async () => {
    const p = await connectedPair();
    p.accepted.onRequest(() => new Promise(() => {}));
    p.dialed.onRequest(() => new Promise(() => {}));
    const mine = p.dialed.request({ header: {} });
    const theirs = p.accepted.request({ header: {} });
    const serverSawClose = whenClosed(p.accepted);
    await new Promise((r) => setTimeout(r, 20));
    p.dialed.close();
    expect((await rejection(mine)).code).toBe('CLOSED');
    expect((await rejection(theirs)).code).toBe('CLOSED');
    expect((await serverSawClose)?.message).toContain('closed the connection');
    expect(() => p.dialed.send({ header: {} })).toThrow(FerryError);
    expect((await rejection(p.dialed.request({ header: {} }))).code).toBe('CLOSED');
    expect(p.dialed.stats.bytesOut).toBeGreaterThan(0); // counters survive the close
    expect(p.server.connections.size).toBe(0);
  });

  it('closes the connection on a garbage frame, with a logged error and no crash', async () => {
    const { server, log, accepted } = await openServer();
    const ws = await rawClient(server.address.port);
    const conn = await accepted;
    const closed = whenClosed(conn);
    const code = closeCode(ws);
    ws.send(Buffer.from('this is not a ferry frame'));
    expect(await code).toBe(1008);
    expect(((await closed) as FerryError).code).toBe('INVALID_MESSAGE');
    expect(log.text('error')).toMatch(/invalid frame/);
  });

  it('closes the connection on an oversized frame', async () => {
    const { server, log, accepted } = await openServer();
    const ws = await rawClient(server.address.port);
    const closed = whenClosed(await accepted);
    const code = closeCode(ws);
    ws.send(Buffer.alloc(MAX_FRAME_BYTES + 1));
    expect(await code).toBe(1009);
    expect(((await closed) as FerryError).code).toBe('MESSAGE_TOO_LARGE');
    expect(log.text('error')).toMatch(/larger than the limit/);
  });

  it('refuses a zstd bomb (tiny compressed payload that expands past the limit)', async () => {
    const { server, log, accepted } = await openServer();
    const ws = await rawClient(server.address.port);
    const closed = whenClosed(await accepted);
    const code = closeCode(ws);
    const dst = Buffer.alloc(zstd.compressBound(256 << 20));
    const bomb = dst.subarray(0, zstd.compress(dst, Buffer.alloc(256 << 20), 3));
    const header = Buffer.from(JSON.stringify({ kind: 'message', header: {} }));
    const prefix = Buffer.alloc(5);
    prefix[0] = 3; // compressed, has payload
    prefix.writeUInt32BE(header.length, 1);
    ws.send(Buffer.concat([prefix, header, bomb]));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(await code).toBe(1009);
    expect(((await closed) as FerryError).code).toBe('MESSAGE_TOO_LARGE');
    expect(log.text('error')).toContain('expands to 268435456 bytes');
  });

  it('closes a connection whose peer has gone silent', async () => {
    const { server, log, accepted } = await openServer({ heartbeatIntervalMs: 50, idleTimeoutMs: 250 });
    await rawClient(server.address.port, { autoPong: false });
    const reason = await whenClosed(await accepted);
    expect((reason as FerryError).code).toBe('PEER_UNAVAILABLE');
    expect(log.text('warn')).toContain('no data from');
  });

  it('keeps a quiet but live connection open (pings are answered)', async () => {
    const p = await connectedPair({ heartbeatIntervalMs: 50, idleTimeoutMs: 250 }, { heartbeatIntervalMs: 50, idleTimeoutMs: 250 });
    await new Promise((r) => setTimeout(r, 700));
    expect(p.accepted.closed).toBe(false);
    expect(p.dialed.closed).toBe(false);
  });

  it('closing the server closes its connections', async () => {
    const p = await connectedPair();
    const clientSaw = whenClosed(p.dialed);
    await p.server.close();
    const reason = (await clientSaw) as FerryError;
    expect(reason.code).toBe('CLOSED');
    expect(reason.message).toContain('shutting down');
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
