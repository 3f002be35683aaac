/**
 * Remote transfers end to end, beyond remote.test.ts: an interrupted block upload continues
 * where it stopped, a refused upload costs (almost) none of its body, and the block cache's
 * limit set with `ferry cache limit` is remembered and used by later downloads.
 */
import { spawn } from 'node:child_process';
import * as https from 'node:https';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chunkFile } from '../../src/chunker/chunk-file.js';
import { chunkParamsFor } from '../../src/chunker/fastcdc.js';
import { FERRY_BIN, KiB, MiB, REPO_ROOT, exists, overwriteRegion, sha256File, sleep, treeSnapshot, useCluster, waitFor, writeRandomFile } from './harness.js';
import { ALICE_PASSWORD, countingProxy, errorOf, startRemoteNode, type RemoteNode } from './remote-helpers.js';

const cluster = useCluster('remote-transfer');

let r: RemoteNode;

beforeAll(async () => {
  r = await startRemoteNode(await cluster.ready, 'hub', ['docs']);
}, 120_000);

/** The node's partial upload files in a folder, with their sizes. */
async function partials(folder: string): Promise<number[]> {
  const root = r.node.folderPath(folder);
  const names = (await fsp.readdir(root)).filter((n) => n.startsWith('.ferry.tmp.upload-'));
  return Promise.all(names.map(async (n) => (await fsp.stat(path.join(root, n))).size));
}

/** The blocks of a file as the node and the CLI chunk it (its size decides the block size). */
async function blocksOf(file: string): Promise<{ offset: number; size: number; hash: string }[]> {
  const { avgSize } = chunkParamsFor((await fsp.stat(file)).size);
  const out = [];
  for await (const c of chunkFile(file, { avgSize })) out.push({ offset: c.offset, size: c.size, hash: c.hash.toString('hex') });
  return out;
}

/**
 * Uploads a file, then an edited copy of it as NAME (only the changed blocks travel), killed
 * part way; runs `between`; uploads it again and checks that only the blocks after what was
 * built travel, and that the result is the edited file.
 */
async function interruptedBlockUploadResumes(name: string, between: () => Promise<void>): Promise<void> {
  const size = 16 * MiB;
  const a = path.join(r.scratch, 'blocks', `base-${name}`);
  await writeRandomFile(a, size);
  await r.cli.ok(r.alice, ['put', a, 'docs/']);
  // An edited copy: 20 small changes spread over the file; the node has every other block.
  const b = path.join(r.scratch, 'blocks', name);
  await fsp.copyFile(a, b);
  for (let i = 0; i < 20; i++) await overwriteRegion(b, i * 800 * KiB + 100 * KiB, 100);
  const sum = await sha256File(b);
  const known = new Set((await blocksOf(a)).map((c) => c.hash));
  const missing = (await blocksOf(b)).filter((c) => !known.has(c.hash));
  const missingBytes = missing.reduce((n, c) => n + c.size, 0);
  expect(missingBytes).toBeGreaterThan(2 * MiB);
  expect(missingBytes).toBeLessThan(size / 2);

  // A slow block upload, killed once the node has built the file past its 5th missing block.
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: r.scratch };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [FERRY_BIN, '--home', r.alice, 'put', b, 'docs/', '--limit-rate', '512K'], { cwd: REPO_ROOT, env, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const fifth = missing[4]!;
  await waitFor(async () => (await partials('docs')).some((n) => n >= fifth.offset + fifth.size), { message: 'the block upload to pass its 5th missing block', intervalMs: 50, timeoutMs: 60_000 });
  child.kill('SIGKILL');
  await exited;
  // The node notices the broken connection and keeps what it built.
  let held = 0;
  await waitFor(async () => {
    const now = Math.max(0, ...(await partials('docs')));
    const stable = now === held;
    held = now;
    return stable && now > 0;
  }, { message: 'the partial upload to settle', intervalMs: 300 });
  expect(await exists(r.node.file('docs', name))).toBe(false);
  expect(held).toBeLessThan(size);
  const rest = missing.filter((c) => c.offset >= held).reduce((n, c) => n + c.size, 0);
  expect(rest).toBeLessThan(missingBytes);
  await between();

  type Put = { files: { transferred: number; resumedFrom: number; reusedBytes: number; sha256: string }[] };
  const f = (await r.cli.json<Put>(r.alice, ['put', b, 'docs/'])).files[0]!;
  console.log(`block upload of ${size} bytes, ${missingBytes} of them missing on the node: killed with ${held} bytes built; the resumed run sent ${f.transferred} bytes (from ${f.resumedFrom}, ${f.reusedBytes} reused)`);
  expect(f.resumedFrom).toBe(held);
  expect(f.transferred).toBe(rest);
  expect(f.resumedFrom + f.transferred + f.reusedBytes).toBe(size);
  expect(f.sha256).toBe(sum);
  expect(await sha256File(r.node.file('docs', name))).toBe(sum);
  expect(await partials('docs')).toEqual([]);
  const log = await r.cli.json<{ action: string; detail?: { resumedFrom?: number; sentBytes?: number } }[]>(r.alice, ['log', '--path', `docs/${name}`]);
  expect(log.filter((e) => e.action === 'upload').map((e) => [e.detail?.resumedFrom, e.detail?.sentBytes])).toEqual([[held, rest]]);
}

describe('remote transfers', () => {
  it('continues an interrupted block upload after the blocks that arrived, sending only the rest', async () => {
    await interruptedBlockUploadResumes('b.bin', async () => undefined);
  }, 180_000);

  it('continues an interrupted block upload after the node was killed and restarted in between', async () => {
    // Plans live in the node's memory; what was built is on disk, and that is what resumes.
    await interruptedBlockUploadResumes('c.bin', async () => {
      await r.node.kill9();
      await r.node.start();
    });
  }, 180_000);

  it('sends (almost) none of the body of an upload the node refuses', async () => {
    // Through a proxy that counts what the CLI sends; the node pin is per address, so log in there.
    const proxy = await countingProxy(r.node.port);
    try {
      const home = path.join(r.scratch, 'alice-via-proxy');
      await r.cli.ok(home, ['login', `https://127.0.0.1:${proxy.port}`, '--user', 'alice', '--password-stdin'], `${ALICE_PASSWORD}\n`);
      const refused = async (file: string, extra: string[], code: string) => {
        const before = await treeSnapshot(r.node.folderPath('docs'));
        const first = proxy.sentPerConnection.length;
        const put = await r.cli.run(home, ['put', file, 'docs/', '--json', ...extra]);
        expect(put.code).toBe(1);
        expect(errorOf(put).code).toBe(code);
        expect(await treeSnapshot(r.node.folderPath('docs'))).toEqual(before);
        expect(await partials('docs')).toEqual([]);
        const sent = proxy.sentPerConnection.slice(first);
        console.log(`refused upload (${code}): ${sent.reduce((x, y) => x + y, 0)} bytes sent in ${sent.length} requests: ${sent.join(', ')}`);
        return sent.reduce((x, y) => x + y, 0);
      };
      // Larger than a node accepts (1 TiB): a sparse file, with its hash claimed rather than read.
      const huge = path.join(r.scratch, 'refused', 'huge.bin');
      await fsp.mkdir(path.dirname(huge), { recursive: true });
      await fsp.writeFile(huge, 'x');
      await fsp.truncate(huge, 1024 ** 4 + 1);
      // TLS handshakes and headers of three small requests; none of the body.
      expect(await refused(huge, ['--sha256', 'ab'.repeat(32)], 'TOO_LARGE')).toBeLessThan(32 * KiB);
      // 64 MiB whose name is a directory on the node: refused when the CLI asks for an upload
      // plan (whose block list is ~50 KB), before any of the file is sent.
      await r.cli.ok(r.alice, ['mkdir', 'docs/clash.bin']);
      const clash = path.join(r.scratch, 'refused', 'clash.bin');
      await writeRandomFile(clash, 64 * MiB);
      expect(await refused(clash, [], 'CONFLICT')).toBeLessThan(128 * KiB);
    } finally {
      await proxy.close();
    }
  }, 120_000);

  it('answers an upload that sent Expect: 100-continue before asking for its body', async () => {
    // Raw HTTPS, so the test sees whether the node sent "100 Continue": node:http sends it by
    // itself unless the node routes the 'checkContinue' event to the API.
    const put = (urlPath: string, token?: string) =>
      new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
        const req = https.request({
          host: '127.0.0.1', port: r.node.port, method: 'PUT', path: urlPath, rejectUnauthorized: false,
          headers: { expect: '100-continue', 'content-length': '5', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        });
        let continued = false;
        req.on('continue', () => {
          continued = true;
          req.end('hello');
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
        });
        req.on('error', reject);
        req.flushHeaders();
      });
    expect(await put('/api/v1/content/docs/expect-refused.txt')).toEqual({ status: 401, continued: false });
    const login = await fetchJson(`https://127.0.0.1:${r.node.port}/api/v1/login`, { user: 'alice', password: ALICE_PASSWORD });
    await r.cli.ok(r.alice, ['mkdir', 'docs/expect-dir']);
    expect(await put('/api/v1/content/docs/expect-dir', login.token)).toEqual({ status: 409, continued: false });
    expect(await put('/api/v1/content/docs/expect-ok.txt', login.token)).toEqual({ status: 201, continued: true });
    await waitFor(async () => (await fsp.readFile(r.node.file('docs', 'expect-ok.txt'), 'utf8').catch(() => '')) === 'hello' || undefined, { message: 'uploaded file on the node' });
    expect(await exists(r.node.file('docs', 'expect-refused.txt'))).toBe(false);
  });

  it('remembers the cache limit set with `ferry cache limit`, and later downloads keep to it', async () => {
    const size = 8 * MiB;
    const src = path.join(r.scratch, 'cached', 'c.bin');
    const sum = await writeRandomFile(src, size);
    await r.cli.ok(r.alice, ['put', src, 'docs/']);
    const home = path.join(r.scratch, 'alice-cache');
    await fsp.cp(r.alice, home, { recursive: true });
    type Stats = { blocks: number; bytes: number; limit: number; limitSource: string };
    const stats = () => r.cli.json<Stats>(home, ['cache', 'stats']);
    expect(await stats()).toMatchObject({ bytes: 0, limit: 1024 * MiB, limitSource: 'default' });

    const set = await r.cli.ok(home, ['cache', 'limit', '2M']);
    expect(set.stdout.trim()).toBe('Cache limit 2.0 MiB; 0 B in the cache.');
    expect(await stats()).toMatchObject({ limit: 2 * MiB, limitSource: 'set' });
    const text = await r.cli.ok(home, ['cache', 'stats']);
    expect(text.stdout).toMatch(/\(limit 2\.0 MiB\)$/m);

    let n = 0;
    const get = async (...extra: string[]) => {
      const dir = path.join(r.scratch, 'cached', `dl${++n}`);
      await fsp.mkdir(dir, { recursive: true });
      const got = await r.cli.json<{ transferred: number; cachedBytes: number }>(home, ['get', 'docs/c.bin', dir, ...extra]);
      expect(await sha256File(path.join(dir, 'c.bin'))).toBe(sum);
      return got;
    };
    // A later download keeps to the remembered limit (the default would keep all 8 MiB).
    expect((await get()).transferred).toBe(size);
    const small = await stats();
    expect(small.bytes).toBeGreaterThan(0);
    expect(small.bytes).toBeLessThanOrEqual(2 * MiB);
    // --cache-limit applies to one download and is not remembered.
    await get('--cache-limit', '64M');
    expect((await stats()).bytes).toBeGreaterThanOrEqual(size);
    expect((await stats()).limit).toBe(2 * MiB);
    // Lowering the limit evicts at once; raising it lets a download keep the whole file.
    await r.cli.ok(home, ['cache', 'limit', '1M']);
    expect((await stats()).bytes).toBeLessThanOrEqual(MiB);
    await r.cli.ok(home, ['cache', 'limit', '64M']);
    await get();
    expect((await stats()).bytes).toBeGreaterThanOrEqual(size);
    const again = await get();
    expect(again).toMatchObject({ transferred: 0, cachedBytes: size });

    const bad = await r.cli.run(home, ['cache', 'limit', 'lots', '--json']);
    expect(bad.code).toBe(2);
    expect(errorOf(bad).code).toBe('INVALID_CONFIG');
    expect((await stats()).limit).toBe(64 * MiB);
  }, 120_000);
});

/** POSTs JSON to the node (self-signed certificate) and returns the JSON answer. */
function fetchJson(url: string, body: unknown): Promise<{ token: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
