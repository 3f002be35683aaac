/**
 * RemoteClient's streamed uploads against a loopback HTTPS server: the body is sent only once
 * the server asks for it (`Expect: 100-continue`), a refusal before that costs none of it, a
 * refusal while it is on its way stops it, and a server that ignores the Expect header still
 * gets the body after a wait.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdentity } from '../../transport/identity.js';
import { readText, RemoteClient } from './client.js';
import { Credentials } from './credentials.js';
import { RemoteError } from './remote-error.js';

const SIZE = 64 * 1024 * 1024;

let home: string;
let server: Server;
let client: RemoteClient;
/** How the server answers the next upload (a request with Expect: 100-continue). */
let onUpload: (req: IncomingMessage, res: ServerResponse) => void;

/** A 64 MiB body made on demand, counting what was pulled from it. */
function body(): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const stream = Readable.from(
    (function* () {
      for (; pulled < SIZE; pulled += chunk.length) yield chunk;
    })(),
  );
  return { stream, pulled: () => pulled };
}

/** Reads a request body, counting it; resolves with the count when it ends or breaks. */
function drain(req: IncomingMessage, onBytes: (total: number) => void = () => undefined): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    req.on('data', (c: Buffer) => onBytes((n += c.length)));
    req.on('end', () => resolve(n));
    req.on('close', () => resolve(n));
  });
}

function answer(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

const upload = (b: Readable) => client.request('PUT', 'content/docs/x.bin', { headers: { 'content-length': SIZE }, body: b });

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'ferry-client-'));
  const identity = await createIdentity('test-node');
  server = createServer({ key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3' });
  server.on('checkContinue', (req, res) => onUpload(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = new RemoteClient({ url, credentials: new Credentials(home), token: 'ferry_test', trustOnFirstUse: true });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(home, { recursive: true, force: true });
});

describe('RemoteClient uploads', () => {
  it('sends nothing of a body the server refuses before asking for it', async () => {
    let asked = false;
    let received = 0;
    onUpload = (req, res) => {
      asked = true;
      void drain(req, (n) => (received = n));
      answer(res, 403, { error: { code: 'FORBIDDEN', message: 'read-only' } }, { connection: 'close' });
    };
    const b = body();
    const err = await upload(b.stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).code).toBe('FORBIDDEN');
    await new Promise((r) => setTimeout(r, 200));
    expect(asked).toBe(true);
    expect(received).toBe(0);
    expect(b.pulled()).toBe(0);
  });

  it('stops sending when a refusal arrives while the body is on its way', async () => {
    let received = 0;
    onUpload = (req, res) => {
      res.writeContinue();
      let refused = false;
      void drain(req, (n) => {
        received = n;
        if (n >= 1024 * 1024 && !refused) {
          refused = true;
          answer(res, 507, { error: { code: 'INSUFFICIENT_STORAGE', message: 'the disk is full' } });
        }
      });
    };
    const b = body();
    const err = await upload(b.stream).catch((e: unknown) => e);
    expect((err as RemoteError).code).toBe('INSUFFICIENT_STORAGE');
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toBeGreaterThanOrEqual(1024 * 1024);
    expect(received).toBeLessThan(SIZE / 4);
    expect(b.pulled()).toBeLessThan(SIZE / 4);
  });

  it('sends the whole body once asked for it', async () => {
    onUpload = (req, res) => {
      res.writeContinue();
      void drain(req).then((n) => answer(res, 201, { size: n }));
    };
    const res = await upload(body().stream);
    expect(res.statusCode).toBe(201);
    expect(JSON.parse(await readText(res))).toEqual({ size: SIZE });
  });

  it('sends the body anyway, after a wait, to a server that ignores the Expect header', async () => {
    onUpload = (req, res) => void drain(req).then((n) => answer(res, 201, { size: n }));
    const started = Date.now();
    const res = await upload(body().stream);
    expect(JSON.parse(await readText(res))).toEqual({ size: SIZE });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
  }, 20_000);
});
