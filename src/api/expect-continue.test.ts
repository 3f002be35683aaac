/**
 * `Expect: 100-continue` on uploads, over a loopback server wired as the node's HTTPS server
 * should be (RemoteApi.handle on 'checkContinue'): a refused upload is answered before
 * the client sends any of its body, an accepted one is asked for it; a client that sends its
 * body regardless has its connection closed after DISCARD_LIMIT bytes instead of being read to
 * the end.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './test-api.js';
import { DISCARD_LIMIT } from './http-io.js';

const MAX_UPLOAD = 64 * 1024 * 1024;

let root: string;
let port: number;
let aliceToken: string;
let bobToken: string;

interface Outcome {
  status: number;
  code?: string;
  connection?: string;
  /** Whether the server sent 100 Continue. */
  continued: boolean;
  /** Body bytes the client wrote (it writes only after 100 Continue). */
  bodySent: number;
}

/** A PUT that announces `size` bytes and sends them only when asked to continue. */
function putExpecting(path: string, token: string | undefined, body: Buffer, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let continued = false;
    let bodySent = 0;
    const req = request({
      host: '127.0.0.1', port, method: 'PUT', path,
      headers: { expect: '100-continue', 'content-length': body.length, ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
    req.on('continue', () => {
      continued = true;
      bodySent = body.length;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        const code = res.statusCode! >= 400 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined;
        resolve({ status: res.statusCode!, ...(code ? { code } : {}), ...(res.headers.connection ? { connection: res.headers.connection } : {}), continued, bodySent });
        if (!continued) req.destroy();
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({ maxUploadBytes: MAX_UPLOAD });
  ({ root, port, aliceToken, bobToken } = t);
});

afterAll(() => t.close());

describe('Expect: 100-continue', () => {
  it('answers a refused upload before any of its body is sent, and closes the connection', async () => {
    const body = Buffer.alloc(1024 * 1024, 5);
    const cases: [string, string | undefined, Record<string, string>, number, string][] = [
      ['/api/v1/content/docs/x.bin', bobToken, {}, 403, 'FORBIDDEN'],
      ['/api/v1/content/docs/x.bin', undefined, {}, 401, 'UNAUTHORIZED'],
      ['/api/v1/content/docs/../x.bin', aliceToken, {}, 400, 'INVALID_PATH'],
      ['/api/v1/content/nofolder/x.bin', aliceToken, {}, 404, 'UNKNOWN_FOLDER'],
      ['/api/v1/content/docs/sub', aliceToken, {}, 409, 'CONFLICT'],
      ['/api/v1/content/docs/x.bin', aliceToken, { 'x-ferry-sha256': 'nothex' }, 400, 'INVALID_REQUEST'],
      ['/api/v1/content/docs/x.bin', aliceToken, { 'x-ferry-plan': 'no-such-plan' }, 404, 'NOT_FOUND'],
    ];
    for (const [path, token, headers, status, code] of cases) {
      const r = await putExpecting(path, token, body, headers);
      expect([path, r]).toEqual([path, { status, code, connection: 'close', continued: false, bodySent: 0 }]);
    }
    // Larger than the node accepts: refused on the declared length alone.
    const tooLarge = await new Promise<Outcome>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/api/v1/content/docs/huge.bin', headers: { expect: '100-continue', 'content-length': MAX_UPLOAD + 1, authorization: `Bearer ${aliceToken}` } });
      req.on('continue', () => reject(new Error('asked for the body of a too large upload')));
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode!, continued: false, bodySent: 0 });
        req.destroy();
      });
      req.on('error', () => undefined);
      req.flushHeaders();
    });
    expect(tooLarge.status).toBe(413);
    expect(readdirSync(root).sort()).toEqual(['sub']);
  });

  it('asks for the body of an upload that checks out, and stores it', async () => {
    const body = Buffer.alloc(300_000, 7);
    const r = await putExpecting('/api/v1/content/docs/ok.bin', aliceToken, body, { 'x-ferry-sha256': sha(body) });
    expect(r).toMatchObject({ status: 201, continued: true, bodySent: body.length });
    expect(readFileSync(join(root, 'ok.bin'))).toEqual(body);
  });

  it('closes the connection of a refused upload that sends its body anyway, after DISCARD_LIMIT bytes', async () => {
    // A raw socket: a client that ignores the answer and keeps sending (node's own client stops).
    const total = 16 * DISCARD_LIMIT;
    const chunk = Buffer.alloc(256 * 1024, 1);
    const r = await new Promise<{ answer: string; written: number }>((resolve) => {
      let answer = '';
      let written = 0;
      const socket = connect(port, '127.0.0.1');
      socket.setEncoding('latin1').on('data', (d: string) => (answer += d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ answer, written }));
      socket.write(`PUT /api/v1/content/docs/x.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${bobToken}\r\nContent-Length: ${total}\r\n\r\n`);
      const pump = () => {
        while (written < total && !socket.destroyed) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    expect(r.answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.answer).toContain('"FORBIDDEN"');
    // Written before the close arrived: the limit plus what the sockets buffer, far from all of it.
    expect(r.written).toBeGreaterThan(DISCARD_LIMIT);
    expect(r.written).toBeLessThan(total / 2);
  });
});
