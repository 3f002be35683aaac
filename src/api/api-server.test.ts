/**
 * The REST API over a real loopback HTTP server (plain HTTP: TLS is PeerServer's job, tested
 * in transport/) with a real database and folder on disk. The engine is a stub that records
 * what it was told. Covers authentication, permissions, bad input changing nothing, uploads,
 * Range downloads, deletes and the audit log.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './test-api.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: any;
}


let root: string;
let port: number;
let aliceToken: string;
let bobToken: string;
const changed: string[][] = [];

function call(method: string, path: string, opts: { token?: string; body?: Buffer | string; headers?: Record<string, string | number> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json: any;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Every entry under the folder (Ferry's own names included), to prove nothing changed. */
function tree(): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isFile() ? `${r}:${sha(readFileSync(join(abs, e.name)))}` : `${r}/`);
      if (e.isDirectory()) walk(join(abs, e.name), r);
    }
  };
  walk(root, '');
  return out.sort();
}

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi({
    maxUploadBytes: 1_000_000,
    otherFolders: ['private'],
    onLocalChanged: (paths) => changed.push(paths),
    prepare: (docs) => {
      writeFileSync(join(docs, 'hello.txt'), 'hello world\n');
      writeFileSync(join(docs, 'sub', 'data.bin'), Buffer.alloc(100_000, 7));
    },
  });
  ({ root, port, aliceToken, bobToken } = t);
});

afterAll(() => t.close());

describe('REST API', () => {
  it('serves an OpenAPI document describing every route', async () => {
    const r = await call('GET', '/api/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.json.openapi).toMatch(/^3\./);
    for (const p of ['/login', '/logout', '/me', '/folders', '/files/{path}', '/content/{path}', '/hash/{path}', '/blocks/{path}', '/uploads/{path}', '/upload-plan/{path}', '/mkdir/{path}', '/move/{path}', '/versions/{path}', '/restore/{path}', '/search', '/audit']) expect(r.json.paths).toHaveProperty([p]);
    // Every error code the API can send is in the schema.
    expect(r.json.components.schemas.Error.properties.error.properties.code.enum).toEqual(expect.arrayContaining(['INVALID_PATH', 'HASH_MISMATCH', 'FORBIDDEN', 'RATE_LIMITED']));
    expect(Object.keys(r.json.paths['/content/{path}'])).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
  });

  it('refuses requests without a valid token with 401 and a JSON error', async () => {
    const none = await call('GET', '/api/v1/folders');
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe('UNAUTHORIZED');
    expect(none.headers['www-authenticate']).toMatch(/Bearer/);
    const bad = await call('GET', '/api/v1/folders', { token: 'ferry_nope' });
    expect(bad.status).toBe(401);
    const unknown = await call('GET', '/api/v1/nothing', { token: aliceToken });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('NOT_FOUND');
  });

  it('logs in with a password, slows down repeated failures, and audits both', async () => {
    const ok = await call('POST', '/api/v1/login', { body: JSON.stringify({ user: 'alice', password: 'alice-password' }) });
    expect(ok.status).toBe(200);
    expect(ok.json.token).toMatch(/^ferry_/);
    const me = await call('GET', '/api/v1/me', { token: ok.json.token });
    expect(me.json).toMatchObject({ user: 'alice', folders: { docs: 'rw' } });

    const wrong = await call('POST', '/api/v1/login', { body: JSON.stringify({ user: 'bob', password: 'guess' }) });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.code).toBe('UNAUTHORIZED');
    // The right password right after a failure is refused too, until the back-off passes.
    const again = await call('POST', '/api/v1/login', { body: JSON.stringify({ user: 'bob', password: 'bob-password' }) });
    expect(again.status).toBe(429);
    expect(again.json.error.code).toBe('RATE_LIMITED');
    expect(Number(again.headers['retry-after'])).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 600));
    const later = await call('POST', '/api/v1/login', { body: JSON.stringify({ user: 'bob', password: 'bob-password' }) });
    expect(later.status).toBe(200);

    const noUser = await call('POST', '/api/v1/login', { body: JSON.stringify({ user: 'nobody', password: 'x' }) });
    expect(noUser.status).toBe(401);
    const garbage = await call('POST', '/api/v1/login', { body: '{not json' });
    expect(garbage.status).toBe(400);
    expect(garbage.json.error.code).toBe('INVALID_REQUEST');

    // A user sees their own entries (and those of folders they can read), not other users' logins.
    const audit = await call('GET', '/api/v1/audit?user=bob', { token: bobToken });
    const hidden = await call('GET', '/api/v1/audit?user=bob', { token: aliceToken });
    expect(hidden.json.entries.filter((e: any) => e.action === 'login')).toEqual([]);
    const logins = audit.json.entries.filter((e: any) => e.action === 'login');
    expect(logins.map((e: any) => e.ok)).toEqual([false, true]);
    expect(JSON.stringify(audit.json)).not.toContain('bob-password');
  });

  it('lists only the folders a user may access', async () => {
    const r = await call('GET', '/api/v1/folders', { token: bobToken });
    expect(r.json.folders.map((f: any) => [f.id, f.access])).toEqual([['docs', 'ro']]);
    const hidden = await call('GET', '/api/v1/files/private', { token: aliceToken });
    expect(hidden.status).toBe(404);
    expect(hidden.json.error.code).toBe('UNKNOWN_FOLDER');
  });

  it('uploads atomically, verifies X-Ferry-SHA256 and tells the engine', async () => {
    const body = Buffer.from('new content\n');
    const r = await call('PUT', '/api/v1/content/docs/new/dir/file.txt', { token: aliceToken, body, headers: { 'x-ferry-sha256': sha(body), 'x-ferry-mtime': 1_700_000_000_000 } });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ path: 'new/dir/file.txt', size: body.length, sha256: sha(body) });
    expect(readFileSync(join(root, 'new/dir/file.txt'))).toEqual(body);
    expect(changed.at(-1)).toEqual(['new/dir/file.txt']);

    // Replacing keeps the old version in the version area.
    const v2 = Buffer.from('second version\n');
    const r2 = await call('PUT', '/api/v1/content/docs/new/dir/file.txt', { token: aliceToken, body: v2 });
    expect(r2.status).toBe(200);
    expect(r2.json.replaced).toBe(true);
    expect(readdirSync(join(root, '.ferry-versions/new/dir'))).toHaveLength(1);
  });

  it('refuses bad uploads and changes nothing', async () => {
    const before = tree();
    const body = Buffer.from('payload');
    const cases: [string, Record<string, string | number>, string | undefined, number, string][] = [
      ['/api/v1/content/docs/x.txt', { 'x-ferry-sha256': sha('other') }, aliceToken, 400, 'HASH_MISMATCH'],
      ['/api/v1/content/docs/x.txt', { 'x-ferry-sha256': 'nothex' }, aliceToken, 400, 'INVALID_REQUEST'],
      ['/api/v1/content/docs/../x.txt', {}, aliceToken, 400, 'INVALID_PATH'],
      ['/api/v1/content/docs/a/%2e%2e/x.txt', {}, aliceToken, 400, 'INVALID_PATH'],
      ['/api/v1/content/docs//etc/passwd', {}, aliceToken, 400, 'INVALID_PATH'],
      ['/api/v1/content/docs/a%00b', {}, aliceToken, 400, 'INVALID_PATH'],
      ['/api/v1/content/docs/.ferry-versions/x', {}, aliceToken, 400, 'INVALID_PATH'],
      ['/api/v1/content/docs/sub', {}, aliceToken, 409, 'CONFLICT'],
      ['/api/v1/content/docs/hello.txt/inside', {}, aliceToken, 409, 'CONFLICT'],
      ['/api/v1/content/nofolder/x.txt', {}, aliceToken, 404, 'UNKNOWN_FOLDER'],
      ['/api/v1/content/docs/x.txt', {}, bobToken, 403, 'FORBIDDEN'],
      ['/api/v1/content/docs/x.txt', {}, undefined, 401, 'UNAUTHORIZED'],
      ['/api/v1/content/docs/' + 'n'.repeat(300), {}, aliceToken, 400, 'INVALID_PATH'],
    ];
    for (const [path, headers, token, status, code] of cases) {
      const r = await call('PUT', path, { token, body, headers });
      expect([path, r.status, r.json?.error?.code]).toEqual([path, status, code]);
      expect(typeof r.json.error.message).toBe('string');
    }
    const big = await call('PUT', '/api/v1/content/docs/big.bin', { token: aliceToken, body: Buffer.alloc(1_000_001) });
    expect(big.status).toBe(413);
    expect(tree()).toEqual(before);
  });

  it('discards a half-sent upload', async () => {
    const before = tree();
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/api/v1/content/docs/half.bin', headers: { authorization: `Bearer ${aliceToken}`, 'content-length': 50_000 } });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(20_000, 1));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(tree()).toEqual(before);
    expect(existsSync(join(root, 'half.bin'))).toBe(false);
  });

  it('keeps an interrupted upload that claimed its SHA-256, and takes the rest with Content-Range', async () => {
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
    const sum = sha(data);
    const visible = () => tree().filter((e) => !e.startsWith('.ferry.tmp'));
    const before = visible();
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1', port, method: 'PUT', path: '/api/v1/content/docs/resumed.bin',
        headers: { authorization: `Bearer ${aliceToken}`, 'content-length': data.length, 'x-ferry-sha256': sum },
      });
      req.on('error', () => resolve());
      req.write(data.subarray(0, 120_000));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(visible()).toEqual(before);
    const held = await call('GET', `/api/v1/uploads/docs/resumed.bin?sha256=${sum}&size=${data.length}`, { token: aliceToken });
    expect(held.status).toBe(200);
    const offset = held.json.offset as number;
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(120_000);
    // Another user does not see (or continue) alice's partial upload.
    expect((await call('GET', `/api/v1/uploads/docs/resumed.bin?sha256=${sum}&size=${data.length}`, { token: bobToken })).status).toBe(403);

    const wrongStart = await call('PUT', '/api/v1/content/docs/resumed.bin', {
      token: aliceToken, body: data.subarray(offset + 1),
      headers: { 'x-ferry-sha256': sum, 'content-range': `bytes ${offset + 1}-${data.length - 1}/${data.length}` },
    });
    expect(wrongStart.status).toBe(409);
    expect(Number(wrongStart.headers['x-ferry-offset'])).toBe(offset);
    const noHash = await call('PUT', '/api/v1/content/docs/resumed.bin', { token: aliceToken, body: data.subarray(offset), headers: { 'content-range': `bytes ${offset}-${data.length - 1}/${data.length}` } });
    expect(noHash.status).toBe(400);
    expect(visible()).toEqual(before);

    const rest = await call('PUT', '/api/v1/content/docs/resumed.bin', {
      token: aliceToken, body: data.subarray(offset),
      headers: { 'x-ferry-sha256': sum, 'content-range': `bytes ${offset}-${data.length - 1}/${data.length}` },
    });
    expect(rest.status).toBe(201);
    expect(rest.json).toMatchObject({ size: data.length, sha256: sum, resumedFrom: offset });
    expect(readFileSync(join(root, 'resumed.bin'))).toEqual(data);
    expect(tree().filter((e) => e.startsWith('.ferry.tmp'))).toEqual([]);
  });

  it('answers GET /uploads with the refusal the upload itself would get, before any body is sent', async () => {
    const q = (path: string, size: number, token = aliceToken) => call('GET', `/api/v1/uploads/docs/${path}?sha256=${sha('x')}&size=${size}`, { token });
    expect((await q('fine.bin', 10)).json).toMatchObject({ offset: 0 });
    const cases: [Promise<Reply>, number, string][] = [
      [q('sub', 10), 409, 'CONFLICT'],
      [q('hello.txt/inside', 10), 409, 'CONFLICT'],
      [q('big.bin', 1_000_001), 413, 'TOO_LARGE'],
      [q('fine.bin', 10, bobToken), 403, 'FORBIDDEN'],
    ];
    for (const [reply, status, code] of cases) {
      const r = await reply;
      expect([r.status, r.json.error.code]).toEqual([status, code]);
    }
  });

  it('discards a partial upload whose whole does not match the claimed SHA-256', async () => {
    const data = Buffer.alloc(50_000, 3);
    const claimed = sha(Buffer.alloc(50_000, 4));
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/api/v1/content/docs/bad-resume.bin', headers: { authorization: `Bearer ${aliceToken}`, 'content-length': data.length, 'x-ferry-sha256': claimed } });
      req.on('error', () => resolve());
      req.write(data.subarray(0, 20_000));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    await new Promise((r) => setTimeout(r, 200));
    const offset = (await call('GET', `/api/v1/uploads/docs/bad-resume.bin?sha256=${claimed}&size=${data.length}`, { token: aliceToken })).json.offset as number;
    expect(offset).toBeGreaterThan(0);
    const rest = await call('PUT', '/api/v1/content/docs/bad-resume.bin', {
      token: aliceToken, body: data.subarray(offset),
      headers: { 'x-ferry-sha256': claimed, 'content-range': `bytes ${offset}-${data.length - 1}/${data.length}` },
    });
    expect(rest.status).toBe(400);
    expect(rest.json.error.code).toBe('HASH_MISMATCH');
    expect(existsSync(join(root, 'bad-resume.bin'))).toBe(false);
    expect(tree().filter((e) => e.startsWith('.ferry.tmp'))).toEqual([]);
  });

  it('assembles planned block uploads, verifying every block, and refuses bad plans', async () => {
    const a = Buffer.alloc(40_000, 1);
    const b = Buffer.alloc(30_000, 2);
    const whole = Buffer.concat([a, b]);
    const plan = (body: unknown, token = aliceToken) => call('POST', '/api/v1/upload-plan/docs/planned.bin', { token, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const good = { size: whole.length, sha256: sha(whole), blocks: [{ hash: sha(a), size: a.length }, { hash: sha(b), size: b.length }] };
    expect((await plan({ ...good, size: 1 })).json.error.code).toBe('INVALID_REQUEST');
    expect((await plan({ ...good, blocks: [{ hash: 'zz', size: 1 }] })).status).toBe(400);
    expect((await plan(good, bobToken)).status).toBe(403);
    const before = tree();

    // A block whose bytes do not match its hash: nothing changes.
    const p1 = await plan(good);
    expect(p1.json).toMatchObject({ missing: [0, 1], missingBytes: whole.length });
    const bad = await call('PUT', '/api/v1/content/docs/planned.bin', { token: aliceToken, body: Buffer.concat([a, Buffer.alloc(30_000, 3)]), headers: { 'x-ferry-plan': p1.json.plan } });
    expect([bad.status, bad.json.error.code]).toEqual([400, 'HASH_MISMATCH']);
    expect(tree()).toEqual(before);
    // A plan is used once, by its owner, for its file.
    const reused = await call('PUT', '/api/v1/content/docs/planned.bin', { token: aliceToken, body: whole, headers: { 'x-ferry-plan': p1.json.plan } });
    expect(reused.status).toBe(404);
    const p2 = await plan(good);
    const elsewhere = await call('PUT', '/api/v1/content/docs/other.bin', { token: aliceToken, body: whole, headers: { 'x-ferry-plan': p2.json.plan } });
    expect(elsewhere.status).toBe(404);
    const p3 = await plan(good);
    const short = await call('PUT', '/api/v1/content/docs/planned.bin', { token: aliceToken, body: whole.subarray(1), headers: { 'x-ferry-plan': p3.json.plan } });
    expect(short.status).toBe(400);
    expect(tree()).toEqual(before);

    const p4 = await plan(good);
    const ok = await call('PUT', '/api/v1/content/docs/planned.bin', { token: aliceToken, body: whole, headers: { 'x-ferry-plan': p4.json.plan } });
    expect(ok.status).toBe(201);
    expect(ok.json).toMatchObject({ sha256: sha(whole), sentBytes: whole.length, reusedBytes: 0 });
    expect(readFileSync(join(root, 'planned.bin'))).toEqual(whole);
  });

  it('downloads whole files and byte ranges, with the SHA-256 and an ETag for If-Range', async () => {
    const full = await call('GET', '/api/v1/content/docs/sub/data.bin', { token: bobToken });
    expect(full.status).toBe(200);
    expect(full.body.length).toBe(100_000);
    expect(full.headers['x-ferry-sha256']).toBe(sha(full.body));
    expect(full.headers['accept-ranges']).toBe('bytes');
    const etag = full.headers.etag as string;
    const part = await call('GET', '/api/v1/content/docs/sub/data.bin', { token: bobToken, headers: { range: 'bytes=60000-', 'if-range': etag } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 60000-99999/100000');
    expect(part.body.length).toBe(40_000);
    const stale = await call('GET', '/api/v1/content/docs/sub/data.bin', { token: bobToken, headers: { range: 'bytes=60000-', 'if-range': '"sha256-old"' } });
    expect(stale.status).toBe(200);
    const beyond = await call('GET', '/api/v1/content/docs/sub/data.bin', { token: bobToken, headers: { range: 'bytes=200000-' } });
    expect(beyond.status).toBe(416);
    const missing = await call('GET', '/api/v1/content/docs/nope.txt', { token: bobToken });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('NOT_FOUND');
    const dirGet = await call('GET', '/api/v1/content/docs/sub', { token: bobToken });
    expect(dirGet.status).toBe(409);
    const hash = await call('GET', '/api/v1/hash/docs/sub/data.bin', { token: bobToken });
    expect(hash.json.sha256).toBe(sha(full.body));
  });

  it('deletes into the version area; read-only users and non-empty directories are refused', async () => {
    writeFileSync(join(root, 'doomed.txt'), 'bye');
    const before = tree();
    const ro = await call('DELETE', '/api/v1/content/docs/doomed.txt', { token: bobToken });
    expect(ro.status).toBe(403);
    const nonEmpty = await call('DELETE', '/api/v1/content/docs/sub', { token: aliceToken });
    expect(nonEmpty.status).toBe(409);
    const missing = await call('DELETE', '/api/v1/content/docs/ghost.txt', { token: aliceToken });
    expect(missing.status).toBe(404);
    expect(tree()).toEqual(before);
    const ok = await call('DELETE', '/api/v1/content/docs/doomed.txt', { token: aliceToken });
    expect(ok.status).toBe(200);
    expect(existsSync(join(root, 'doomed.txt'))).toBe(false);
    expect(readdirSync(join(root, '.ferry-versions')).some((n) => n.startsWith('doomed~'))).toBe(true);
  });

  it('lists the version area and restores from it: a file, or what is missing under a directory; refusals change nothing', async () => {
    writeFileSync(join(root, 'undo.txt'), 'first');
    expect((await call('DELETE', '/api/v1/content/docs/undo.txt', { token: aliceToken })).status).toBe(200);
    const listed = await call('GET', '/api/v1/versions/docs', { token: bobToken }); // read access is enough to list
    expect(listed.status).toBe(200);
    const undo = listed.json.versions.filter((v: { path: string }) => v.path === 'undo.txt');
    expect(undo).toEqual([{ path: 'undo.txt', replacedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/), size: 5 }]);

    const before = tree();
    for (const [token, url, status, code] of [
      [bobToken, '/api/v1/restore/docs/undo.txt', 403, 'FORBIDDEN'],
      [aliceToken, '/api/v1/restore/docs/never.txt', 404, 'NOT_FOUND'],
      [aliceToken, '/api/v1/restore/docs/undo.txt?at=1999-01-01', 404, 'NOT_FOUND'],
      [aliceToken, '/api/v1/restore/docs/undo.txt?at=soon', 400, 'INVALID_REQUEST'],
      [aliceToken, '/api/v1/restore/docs/../x', 400, 'INVALID_PATH'],
      [aliceToken, '/api/v1/restore/private/undo.txt', 404, 'UNKNOWN_FOLDER'],
    ] as const) {
      const r = await call('POST', url, { token });
      expect([r.status, r.json?.error?.code], url).toEqual([status, code]);
    }
    expect(tree()).toEqual(before);

    changed.length = 0;
    const restored = await call('POST', `/api/v1/restore/docs/undo.txt?at=${encodeURIComponent(undo[0].replacedAt)}`, { token: aliceToken });
    expect(restored.status).toBe(200);
    expect(restored.json).toEqual({ folder: 'docs', restored: [{ path: 'undo.txt', replacedAt: undo[0].replacedAt }], skipped: [] });
    expect(readFileSync(join(root, 'undo.txt'), 'utf8')).toBe('first');
    expect(changed).toEqual([['undo.txt']]);

    // A directory deleted whole comes back; a file there now stays as it is.
    writeFileSync(join(root, 'sub', 'a.txt'), 'a');
    writeFileSync(join(root, 'sub', 'b.txt'), 'b');
    for (const f of ['a.txt', 'b.txt']) expect((await call('DELETE', `/api/v1/content/docs/sub/${f}`, { token: aliceToken })).status).toBe(200);
    writeFileSync(join(root, 'sub', 'b.txt'), 'b again');
    const dir = await call('POST', '/api/v1/restore/docs/sub', { token: aliceToken });
    expect(dir.status).toBe(200);
    expect(dir.json.restored.map((r: { path: string }) => r.path)).toEqual(['sub/a.txt']);
    expect(dir.json.skipped).toEqual(['sub/b.txt']);
    expect(readFileSync(join(root, 'sub', 'a.txt'), 'utf8')).toBe('a');
    expect(readFileSync(join(root, 'sub', 'b.txt'), 'utf8')).toBe('b again');
  });

  it('rewinds a directory or the whole folder to a past time; a dry run needs read access and changes nothing', async () => {
    mkdirSync(join(root, 'rw'), { recursive: true });
    writeFileSync(join(root, 'rw', 'x.txt'), 'original');
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(root, 'rw', 'x.txt'), hourAgo, hourAgo);
    const asOf = encodeURIComponent(new Date(Date.now() - 1_800_000).toISOString());
    expect((await call('DELETE', '/api/v1/content/docs/rw/x.txt', { token: aliceToken })).status).toBe(200);
    writeFileSync(join(root, 'rw', 'x.txt'), 'scrambled');
    writeFileSync(join(root, 'rw', 'note.txt'), 'pay up');

    const before = tree();
    const dry = await call('POST', `/api/v1/restore/docs/rw?asOf=${asOf}&dryRun=true`, { token: bobToken });
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({ folder: 'docs', dryRun: true, restored: [{ path: 'rw/x.txt' }], changedSince: ['rw/note.txt'], unchanged: 0 });
    for (const [token, url, status, code] of [
      [bobToken, `/api/v1/restore/docs/rw?asOf=${asOf}`, 403, 'FORBIDDEN'],
      [aliceToken, '/api/v1/restore/docs/rw?asOf=last-week', 400, 'INVALID_REQUEST'],
      [aliceToken, `/api/v1/restore/docs/rw?asOf=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, 400, 'INVALID_REQUEST'],
      [aliceToken, `/api/v1/restore/docs/../rw?asOf=${asOf}`, 400, 'INVALID_PATH'],
    ] as const) {
      const r = await call('POST', url, { token });
      expect([r.status, r.json?.error?.code], url).toEqual([status, code]);
    }
    expect(tree()).toEqual(before);

    changed.length = 0;
    const done = await call('POST', `/api/v1/restore/docs/rw?asOf=${asOf}`, { token: aliceToken });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ dryRun: false, restored: [{ path: 'rw/x.txt' }], changedSince: ['rw/note.txt'] });
    expect(readFileSync(join(root, 'rw', 'x.txt'), 'utf8')).toBe('original');
    expect(readFileSync(join(root, 'rw', 'note.txt'), 'utf8')).toBe('pay up');
    expect(changed).toEqual([['rw/x.txt']]);
    // The whole folder, given as the folder alone: rw/x.txt is as it was by now.
    const whole = await call('POST', `/api/v1/restore/docs?asOf=${asOf}&dryRun=true`, { token: bobToken });
    expect(whole.status).toBe(200);
    expect(whole.json.restored.map((r: { path: string }) => r.path)).not.toContain('rw/x.txt');
    expect(whole.json.changedSince).toContain('rw/note.txt');
  });

  it('keeps an audit log of writes, downloads and refusals, filtered by user and path', async () => {
    const r = await call('GET', '/api/v1/audit?path=docs/doomed.txt', { token: aliceToken });
    expect(r.json.entries.map((e: any) => [e.user, e.action, e.ok, e.error ?? null])).toEqual([
      ['bob', 'delete', false, 'FORBIDDEN'],
      ['alice', 'delete', true, null],
    ]);
    expect(r.json.entries[0].address).toBe('127.0.0.1');
    const downloads = await call('GET', '/api/v1/audit?user=bob&since=1h', { token: bobToken });
    expect(downloads.json.entries.some((e: any) => e.action === 'download' && e.path === 'sub/data.bin')).toBe(true);
    const bad = await call('GET', '/api/v1/audit?since=yesterday-ish', { token: bobToken });
    expect(bad.status).toBe(400);
  });
});
