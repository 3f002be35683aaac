/**
 * Remote access end to end: a real `ferry start` node (with a peer sharing the folder), users
 * made with `ferry user add`, and the real CLI (`ferry login/ls/get/put/hash/verify/log/rm`)
 * talking to the node's REST API over HTTPS with the node's certificate pinned.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { request } from 'node:https';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FERRY_BIN,
  MiB,
  REPO_ROOT,
  connectMesh,
  describeRun,
  exists,
  overwriteRegion,
  parseJsonOutput,
  runFerry,
  sha256File,
  sleep,
  treeSnapshot,
  useCluster,
  waitFor,
  waitForAbsent,
  waitForContent,
  writeFile,
  writeRandomFile,
  type FerryNode,
  type RunResult,
} from './harness.js';

const cluster = useCluster('remote');

const ALICE_PASSWORD = 'alice-secret-password';
const BOB_PASSWORD = 'bob-secret-password';

let hub: FerryNode;
let peer: FerryNode;
let scratch: string;
/** CLI homes of the two remote users (no node there, only login state). */
let aliceHome: string;
let bobHome: string;

/** Runs the CLI with `input` on stdin (for --password-stdin), in the cluster's sandbox. */
function run(home: string, args: string[], input?: string, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return runFerry(home, args, { input, sandbox: scratch, timeoutMs: opts.timeoutMs ?? 60_000 });
}

async function ok(home: string, args: string[], input?: string): Promise<RunResult> {
  const r = await run(home, args, input);
  if (r.code !== 0) throw new Error(describeRun(r, 'expected exit code 0'));
  return r;
}

/** The `{"error":{code,message}}` of a failed --json command. */
function errorOf(r: RunResult): { code: string; message: string } {
  const v = parseJsonOutput<{ error?: { code: string; message: string } }>(r, 'stderr');
  if (!v.error) throw new Error(describeRun(r, 'no JSON error on stderr'));
  return v.error;
}

const url = () => `https://127.0.0.1:${hub.port}`;

beforeAll(async () => {
  const c = await cluster.ready;
  scratch = await c.scratch('remote');
  hub = await c.createNode('hub');
  peer = await c.createNode('peer');
  await connectMesh([hub, peer], 'docs');
  await hub.addFolder('photos');
  await ok(hub.home, ['user', 'add', 'alice', '--folder', 'docs', 'photos:rw', '--password-stdin'], `${ALICE_PASSWORD}\n`);
  await ok(hub.home, ['user', 'add', 'bob', '--folder', 'docs:ro', '--password-stdin'], `${BOB_PASSWORD}\n`);
  await hub.start();
  await peer.start();
  aliceHome = path.join(scratch, 'alice');
  bobHome = path.join(scratch, 'bob');
  await ok(aliceHome, ['login', url(), '--user', 'alice', '--password-stdin'], `${ALICE_PASSWORD}\n`);
  await ok(bobHome, ['login', url(), '--user', 'bob', '--password-stdin'], `${BOB_PASSWORD}\n`);
}, 120_000);

describe('remote access', () => {
  it('manages users and tokens without ever storing a secret in clear', async () => {
    const users = parseJsonOutput<{ name: string; folders: Record<string, string> }[]>(await ok(hub.home, ['user', 'list', '--json']));
    expect(users.map((u) => [u.name, u.folders])).toEqual([
      ['alice', { docs: 'rw', photos: 'rw' }],
      ['bob', { docs: 'ro' }],
    ]);
    const dup = await run(hub.home, ['user', 'add', 'alice', '--password-stdin', '--json'], 'another-password\n');
    expect(dup.code).not.toBe(0);
    expect(errorOf(dup).code).toBe('ALREADY_EXISTS');
    const badFolder = await run(hub.home, ['user', 'add', 'carol', '--folder', 'nope', '--password-stdin'], 'carol-password\n');
    expect(badFolder.code).not.toBe(0);
    expect(badFolder.stderr).toContain('no folder nope');

    const created = parseJsonOutput<{ token: string; id: number }>(await ok(hub.home, ['token', 'create', 'bob', '--label', 'backup-script', '--json']));
    expect(created.token).toMatch(/^ferry_/);
    const scriptHome = path.join(scratch, 'script');
    await ok(scriptHome, ['login', url(), '--token-stdin'], created.token + '\n');
    const folders = parseJsonOutput<{ id: string }[]>(await ok(scriptHome, ['ls', '--json']));
    expect(folders.map((f) => f.id)).toEqual(['docs']);
    const listed = parseJsonOutput<{ label: string }[]>(await ok(hub.home, ['token', 'list', 'bob', '--json']));
    expect(JSON.stringify(listed)).not.toContain(created.token);

    // Neither passwords nor tokens are in the node's database files.
    for (const f of ['index.db', 'index.db-wal']) {
      const bytes = (await fsp.readFile(path.join(hub.home, f)).catch(() => Buffer.alloc(0))).toString('latin1');
      for (const secret of [ALICE_PASSWORD, BOB_PASSWORD, created.token]) expect(bytes.includes(secret), `${secret} in ${f}`).toBe(false);
    }
  });

  it('uploads a directory tree byte for byte, syncs it to the peer, and downloads it back', async () => {
    const tree = path.join(scratch, 'tree');
    await writeFile(path.join(tree, 'a.txt'), 'alpha\n');
    await writeRandomFile(path.join(tree, 'sub', 'b.bin'), 3 * MiB + 17);
    await writeFile(path.join(tree, 'sub', 'deeper', 'c.md'), '# notes\n');
    await writeFile(path.join(tree, 'name with spaces & #.txt'), 'odd name\n');
    await writeFile(path.join(tree, 'sub', 'empty'), '');
    await fsp.mkdir(path.join(tree, 'sub', 'nothing-here'), { recursive: true });
    const put = parseJsonOutput<{ files: { skipped: boolean }[]; transferred: number }>(await ok(aliceHome, ['put', tree, 'docs/', '--json']));
    expect(put.files).toHaveLength(5);
    expect(put.transferred).toBe(3 * MiB + 17 + 6 + 8 + 9);

    const local = await treeSnapshot(tree);
    expect(await treeSnapshot(hub.file('docs', 'tree'))).toEqual(local);
    // The upload is a local change like any other: it reaches the peer.
    await waitForContent(peer, 'docs', 'tree/sub/deeper/c.md', '# notes\n');
    await waitFor(async () => JSON.stringify(await treeSnapshot(peer.file('docs', 'tree'))) === JSON.stringify(local), { message: 'the tree on the peer' });

    const dl = path.join(scratch, 'download');
    await fsp.mkdir(dl, { recursive: true });
    const got = parseJsonOutput<{ files: unknown[]; transferred: number }>(await ok(aliceHome, ['get', 'docs/tree', dl, '--json']));
    expect(got.files).toHaveLength(5);
    expect(await treeSnapshot(path.join(dl, 'tree'))).toEqual(local);

    // Uploading the same tree again sends nothing.
    const again = parseJsonOutput<{ files: { skipped: boolean }[]; transferred: number }>(await ok(aliceHome, ['put', tree, 'docs/', '--json']));
    expect(again.transferred).toBe(0);
    expect(again.files.every((f) => f.skipped)).toBe(true);
  });

  it('lists folders and files, filtered by time, type and depth', async () => {
    const dir = path.join(scratch, 'lst');
    await writeFile(path.join(dir, 'old.txt'), 'old\n');
    await fsp.utimes(path.join(dir, 'old.txt'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    await writeFile(path.join(dir, 'new.txt'), 'new\n');
    await writeFile(path.join(dir, 'pic.jpeg'), randomBytes(1000));
    await writeFile(path.join(dir, 'inner', 'deep.txt'), 'deep\n');
    // Piped (not a terminal): the result line only, no progress bar.
    const quiet = await ok(aliceHome, ['put', dir, 'docs/']);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout.trim().split('\n')).toEqual(['4 file(s) uploaded, 0 already there, 1013 B sent.']);

    const folders = parseJsonOutput<{ id: string; access: string }[]>(await ok(aliceHome, ['ls', '--json']));
    expect(folders.map((f) => [f.id, f.access])).toEqual([
      ['docs', 'rw'],
      ['photos', 'rw'],
    ]);
    const names = async (...args: string[]) =>
      parseJsonOutput<{ path: string }[]>(await ok(aliceHome, ['ls', 'docs/lst', '--json', ...args])).map((e) => e.path);
    expect(await names()).toEqual(['lst/inner', 'lst/new.txt', 'lst/old.txt', 'lst/pic.jpeg']);
    expect(await names('--recursive')).toEqual(['lst/inner', 'lst/inner/deep.txt', 'lst/new.txt', 'lst/old.txt', 'lst/pic.jpeg']);
    expect(await names('--type', 'txt')).toEqual(['lst/new.txt', 'lst/old.txt']);
    expect(await names('--type', '*.jp*g')).toEqual(['lst/pic.jpeg']);
    expect(await names('--type', 'txt', '--recursive', '--since', '2021-01-01')).toEqual(['lst/inner/deep.txt', 'lst/new.txt']);
    expect(await names('--until', '2021-01-01')).toEqual(['lst/old.txt']);
    expect(await names('--since', '1h', '--type', '.txt')).toEqual(['lst/new.txt']);

    const long = await ok(aliceHome, ['ls', '--long', 'docs/lst']);
    expect(long.stdout).toMatch(/file\s+4\s+2020-01-01T00:00:00.000Z\s+[0-9a-f]{16}\s+old\.txt/);
    expect(long.stdout).toMatch(/dir .* inner\//);
    const one = parseJsonOutput<{ path: string; size: number; sha256?: string; contentHash: string }[]>(await ok(aliceHome, ['ls', 'docs/lst/new.txt', '--json']));
    expect(one).toEqual([expect.objectContaining({ path: 'lst/new.txt', size: 4, type: 'file', contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) })]);

    const bad = await run(aliceHome, ['ls', 'docs/lst', '--since', 'last tuesday', '--json']);
    expect(bad.code).not.toBe(0);
    expect(errorOf(bad).message).toMatch(/not a time/);
  });

  it('resumes an interrupted download and fetches only the missing part', async () => {
    const size = 12 * MiB;
    const src = path.join(scratch, 'big', 'big.bin');
    const sum = await writeRandomFile(src, size);
    await ok(aliceHome, ['put', src, 'docs/']);
    const dl = path.join(scratch, 'resume');
    await fsp.mkdir(dl, { recursive: true });
    const part = path.join(dl, 'big.bin.ferry-part');

    // A slow download, killed midway.
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: scratch };
    delete env.NODE_OPTIONS;
    // Without the block cache: the byte-wise resume of a partial file (the cache has its own test).
    const child = spawn(process.execPath, [FERRY_BIN, '--home', aliceHome, 'get', 'docs/big.bin', dl, '--limit-rate', '3M', '--no-cache'], { cwd: REPO_ROOT, env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await waitFor(async () => ((await fsp.stat(part).catch(() => undefined))?.size ?? 0) >= 2 * MiB, { message: 'the partial download to grow', intervalMs: 50 });
    child.kill('SIGKILL');
    await exited;
    const partial = (await fsp.stat(part)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(size);
    expect(await exists(path.join(dl, 'big.bin'))).toBe(false);

    const r = parseJsonOutput<{ files: { transferred: number; resumedFrom: number; size: number }[]; transferred: number }>(await ok(aliceHome, ['get', 'docs/big.bin', dl, '--json', '--no-cache']));
    const f = r.files[0]!;
    expect(f.resumedFrom).toBeGreaterThanOrEqual(partial);
    expect(f.transferred).toBeLessThan(size);
    expect(f.transferred + f.resumedFrom).toBe(size);
    expect(await sha256File(path.join(dl, 'big.bin'))).toBe(sum);
    expect(await exists(part)).toBe(false);
  });

  it('sends and fetches only the changed blocks of an edited file (block upload, local block cache)', async () => {
    const size = 8 * MiB;
    const src = path.join(scratch, 'cache', 'data.bin');
    await writeRandomFile(src, size);
    await ok(aliceHome, ['put', src, 'docs/']);
    const cacheHome = path.join(scratch, 'alice-cache');
    await fsp.cp(aliceHome, cacheHome, { recursive: true });
    type Got = { files: { transferred: number; cachedBytes: number; sha256: string }[]; transferred: number; cachedBytes: number };
    const get = async (dir: string, ...extra: string[]) => {
      const d = path.join(scratch, 'cache', dir);
      await fsp.mkdir(d, { recursive: true });
      return parseJsonOutput<Got>(await ok(cacheHome, ['get', 'docs/data.bin', d, '--json', ...extra]));
    };
    const first = await get('dl1');
    expect(first.transferred).toBe(size);
    expect(first.cachedBytes).toBe(0);

    // Change 100 bytes in the middle and upload the new version: only the changed blocks go up.
    await overwriteRegion(src, 4 * MiB, 100);
    const newSum = await sha256File(src);
    type Put = { files: { transferred: number; reusedBytes: number; sha256: string }[] };
    const up = parseJsonOutput<Put>(await ok(aliceHome, ['put', src, 'docs/', '--json'])).files[0]!;
    expect(up.transferred).toBeGreaterThan(0);
    expect(up.transferred).toBeLessThan(MiB);
    expect(up.reusedBytes + up.transferred).toBe(size);
    expect(await sha256File(hub.file('docs', 'data.bin'))).toBe(newSum);
    await waitFor(async () => (await sha256File(peer.file('docs', 'data.bin')).catch(() => '')) === newSum, { message: 'the new version on the peer' });
    // A copy under another name is built on the node from blocks it has: nothing is sent.
    const copy = parseJsonOutput<Put>(await ok(aliceHome, ['put', src, 'docs/copies/', '--json'])).files[0]!;
    expect(copy).toMatchObject({ transferred: 0, reusedBytes: size, sha256: newSum });
    expect(await sha256File(hub.file('docs', 'copies/data.bin'))).toBe(newSum);

    const second = await get('dl2');
    expect(second.transferred).toBeGreaterThan(0);
    expect(second.transferred).toBeLessThan(MiB);
    expect(second.cachedBytes + second.transferred).toBe(size);
    expect(await sha256File(path.join(scratch, 'cache', 'dl2', 'data.bin'))).toBe(newSum);

    const stats = parseJsonOutput<{ blocks: number; bytes: number }>(await ok(cacheHome, ['cache', 'stats', '--json']));
    expect(stats.bytes).toBeGreaterThanOrEqual(size);
    await ok(cacheHome, ['cache', 'clear']);
    expect(parseJsonOutput<{ blocks: number }>(await ok(cacheHome, ['cache', 'stats', '--json'])).blocks).toBe(0);
    // A small limit keeps the cache small (least recently used blocks go first).
    const limited = await get('dl3', '--cache-limit', '1M');
    expect(limited.transferred).toBe(size);
    expect(parseJsonOutput<{ bytes: number }>(await ok(cacheHome, ['cache', 'stats', '--json'])).bytes).toBeLessThanOrEqual(MiB);
  });

  it('resumes an interrupted upload and sends only the rest', async () => {
    const size = 12 * MiB;
    const src = path.join(scratch, 'bigup', 'up.bin');
    const sum = await writeRandomFile(src, size);
    const partials = async () => {
      const names = (await fsp.readdir(hub.folderPath('docs'))).filter((n) => n.startsWith('.ferry.tmp.upload-'));
      return Promise.all(names.map(async (n) => (await fsp.stat(path.join(hub.folderPath('docs'), n))).size));
    };
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: scratch };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [FERRY_BIN, '--home', aliceHome, 'put', src, 'docs/', '--limit-rate', '3M'], { cwd: REPO_ROOT, env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await waitFor(async () => (await partials()).some((n) => n >= 2 * MiB), { message: 'the partial upload to grow on the node', intervalMs: 50 });
    child.kill('SIGKILL');
    await exited;
    await sleep(300);
    // Nothing visible changed on the node; the part it received is kept, hidden.
    expect(await exists(hub.file('docs', 'up.bin'))).toBe(false);
    const held = Math.max(...(await partials()));
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(size);

    const r = parseJsonOutput<{ files: { transferred: number; resumedFrom: number; size: number }[] }>(await ok(aliceHome, ['put', src, 'docs/', '--json']));
    const f = r.files[0]!;
    expect(f.resumedFrom).toBe(held);
    expect(f.transferred).toBe(size - held);
    expect(await sha256File(hub.file('docs', 'up.bin'))).toBe(sum);
    expect(await partials()).toEqual([]);
    const audit = parseJsonOutput<{ action: string; path?: string; detail?: { resumedFrom?: number } }[]>(await ok(aliceHome, ['log', '--json', '--path', 'docs/up.bin']));
    expect(audit.filter((e) => e.action === 'upload').map((e) => e.detail?.resumedFrom)).toEqual([held]);
  });

  it('hash and verify: a tampered local copy is a mismatch with a non-zero exit', async () => {
    const h = parseJsonOutput<{ sha256: string; size: number }>(await ok(aliceHome, ['hash', 'docs/tree/a.txt', '--json']));
    expect(h).toMatchObject({ size: 6, sha256: await sha256File(path.join(scratch, 'tree', 'a.txt')) });
    const all = await ok(aliceHome, ['hash', '--all', 'docs/tree']);
    expect(all.stdout.trim().split('\n')).toHaveLength(5);

    const copy = path.join(scratch, 'download', 'tree', 'a.txt');
    const good = await ok(aliceHome, ['verify', copy, 'docs/tree/a.txt']);
    expect(good.stdout).toMatch(/^OK/);
    await fsp.writeFile(copy, 'alphA\n');
    const bad = await run(aliceHome, ['verify', copy, 'docs/tree/a.txt']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^MISMATCH/);
    const badJson = await run(aliceHome, ['verify', copy, 'docs/tree/a.txt', '--json']);
    expect(badJson.code).toBe(1);
    expect(parseJsonOutput<{ match: boolean }>(badJson).match).toBe(false);

    // Whole trees: the original matches; the downloaded copy, tampered and with an extra file, does not.
    const tree = await ok(aliceHome, ['verify', path.join(scratch, 'tree'), 'docs/tree']);
    expect(tree.stdout).toMatch(/^OK: 5 file\(s\)/m);
    await writeFile(path.join(scratch, 'download', 'tree', 'extra.txt'), 'extra\n');
    const treeBad = await run(aliceHome, ['verify', path.join(scratch, 'download', 'tree'), 'docs/tree', '--json']);
    expect(treeBad.code).toBe(1);
    expect(parseJsonOutput(treeBad)).toMatchObject({ match: false, same: 4, differ: ['a.txt'], missingRemotely: ['extra.txt'], missingLocally: [] });
  });

  it('refuses bad input with a clear error and a non-zero exit, changing nothing on the node', async () => {
    const file = path.join(scratch, 'bad', 'payload.txt');
    await writeFile(file, 'payload\n');
    const before = await treeSnapshot(hub.folderPath('docs'));
    const cases: [string, string[], string | undefined, RegExp][] = [
      [aliceHome, ['put', file, 'docs/../outside'], undefined, /INVALID_PATH/],
      [aliceHome, ['put', file, 'docs//abs'], undefined, /INVALID_PATH/],
      [aliceHome, ['get', '/etc/passwd', scratch], undefined, /INVALID_PATH/],
      [aliceHome, ['get', 'docs/../../etc/passwd', scratch], undefined, /INVALID_PATH/],
      [aliceHome, ['put', file, 'docs/.ferry-versions'], undefined, /INVALID_PATH/],
      [aliceHome, ['get', 'nofolder/x', scratch], undefined, /UNKNOWN_FOLDER/],
      [aliceHome, ['get', 'docs/missing.txt', scratch], undefined, /NOT_FOUND/],
      [aliceHome, ['rm', 'docs/missing.txt'], undefined, /NOT_FOUND/],
      [aliceHome, ['rm', 'docs/tree'], undefined, /CONFLICT/],
      [bobHome, ['put', file, 'docs/'], undefined, /FORBIDDEN/],
      [bobHome, ['rm', 'docs/tree/a.txt'], undefined, /FORBIDDEN/],
      [aliceHome, ['put', file, 'docs/', '--sha256', 'ab'.repeat(32)], undefined, /HASH_MISMATCH/],
      [path.join(scratch, 'mallory'), ['login', url(), '--user', 'mallory', '--password-stdin'], 'wrong-password\n', /UNAUTHORIZED/],
      [path.join(scratch, 'nobody'), ['ls'], undefined, /NOT_LOGGED_IN/],
    ];
    for (const [home, args, input, code] of cases) {
      const r = await run(home, [...args, '--json'], input);
      expect(r.code, describeRun(r, 'must fail')).not.toBe(0);
      expect(r.code).not.toBeNull();
      const err = errorOf(r);
      expect(err.code, describeRun(r, String(code))).toMatch(code);
      expect(err.message.length).toBeGreaterThan(5);
      // Without --json: a message on stderr, nothing on stdout.
      const plain = await run(home, args, input);
      expect(plain.code).not.toBe(0);
      expect(plain.stderr).toMatch(/^ferry: /);
    }
    // A NUL byte cannot be passed in argv; send it straight to the API.
    const token = JSON.parse(await fsp.readFile(path.join(aliceHome, 'remotes.json'), 'utf8')).remotes[url()].token as string;
    const nul = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: hub.port, method: 'PUT', path: '/api/v1/content/docs/a%00b.txt', rejectUnauthorized: false, headers: { authorization: `Bearer ${token}`, 'content-length': 3 } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end('abc');
    });
    expect(nul.status).toBe(400);
    expect(JSON.parse(nul.body).error.code).toBe('INVALID_PATH');

    expect(await treeSnapshot(hub.folderPath('docs'))).toEqual(before);
    const leftovers = (await fsp.readdir(hub.folderPath('docs'))).filter((n) => n.startsWith('.ferry.tmp'));
    expect(leftovers).toEqual([]);
  });

  it('deletes remote files (synced to the peer) and records every action in the audit log', async () => {
    const d = parseJsonOutput<{ path: string }[]>(await ok(aliceHome, ['rm', 'docs/tree/sub/deeper', '--recursive', '--json']));
    expect(d[0]!.path).toBe('tree/sub/deeper');
    expect(await exists(hub.file('docs', 'tree/sub/deeper'))).toBe(false);
    await waitForAbsent(peer, 'docs', 'tree/sub/deeper/c.md');

    type Entry = { user: string; action: string; folder?: string; path?: string; address: string; ok: boolean; error?: string; at: string };
    const log = parseJsonOutput<Entry[]>(await ok(aliceHome, ['log', '--json']));
    const has = (user: string, action: string, p?: string, okay = true) => log.some((e) => e.user === user && e.action === action && (p === undefined || `${e.folder}/${e.path}` === p) && e.ok === okay);
    expect(has('alice', 'login')).toBe(true);
    expect(has('alice', 'upload', 'docs/tree/sub/b.bin')).toBe(true);
    expect(has('alice', 'download', 'docs/tree/sub/b.bin')).toBe(true);
    expect(has('alice', 'delete', 'docs/tree/sub/deeper')).toBe(true);
    expect(has('alice', 'upload', 'docs/payload.txt', false)).toBe(true); // the hash mismatch
    expect(has('bob', 'upload', 'docs/payload.txt', false)).toBe(true); // read-only
    expect(log.every((e) => e.address === '127.0.0.1' && !Number.isNaN(Date.parse(e.at)))).toBe(true);

    const byPath = parseJsonOutput<Entry[]>(await ok(aliceHome, ['log', '--json', '--path', 'docs/tree/sub/deeper']));
    expect(byPath.map((e) => e.action)).toEqual(['upload', 'download', 'delete']);
    const byUser = parseJsonOutput<Entry[]>(await ok(aliceHome, ['log', '--json', '--user', 'bob']));
    expect(byUser.length).toBeGreaterThan(0);
    expect(byUser.every((e) => e.user === 'bob')).toBe(true);
    const future = parseJsonOutput<Entry[]>(await ok(aliceHome, ['log', '--json', '--since', '2099-01-01']));
    expect(future).toEqual([]);
    const text = await ok(aliceHome, ['log', '--path', 'docs/tree/sub/deeper']);
    expect(text.stdout).toMatch(/alice {2}delete {2}docs\/tree\/sub\/deeper {2}from 127\.0\.0\.1/);
  });

  it('lists and restores what was deleted, over the API (--remote), as a new edit that reaches the peer', async () => {
    const listed = parseJsonOutput<{ path: string; size: number; replacedAt: string }[]>(await ok(aliceHome, ['versions', 'docs', 'tree/sub/deeper', '--remote', url(), '--json']));
    expect(listed.map((v) => [v.path, v.size])).toEqual([['tree/sub/deeper/c.md', '# notes\n'.length]]);
    const refused = await run(bobHome, ['restore', 'docs', 'tree/sub/deeper', '--remote', url(), '--json']);
    expect(refused.code, describeRun(refused, 'a read-only user restoring')).toBe(1);
    expect(errorOf(refused).code).toBe('FORBIDDEN');
    expect(await exists(hub.file('docs', 'tree/sub/deeper/c.md'))).toBe(false);

    const r = await ok(aliceHome, ['restore', 'docs', 'tree/sub/deeper', '--remote', url()]);
    expect(r.stdout).toMatch(/^Restored tree\/sub\/deeper\/c\.md as it was until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n$/);
    expect(await fsp.readFile(hub.file('docs', 'tree/sub/deeper/c.md'), 'utf8')).toBe('# notes\n');
    await waitForContent(peer, 'docs', 'tree/sub/deeper/c.md', '# notes\n');
    const log = parseJsonOutput<{ user: string; action: string; path?: string; ok: boolean }[]>(await ok(aliceHome, ['log', '--json', '--path', 'docs/tree/sub/deeper']));
    expect(log.filter((e) => e.action === 'restore').map((e) => [e.user, e.ok])).toEqual([['bob', false], ['alice', true]]);
  });

  it('makes directories and moves files and directories, refusing what would overwrite or escape', async () => {
    const made = parseJsonOutput<{ created: boolean }[]>(await ok(aliceHome, ['mkdir', 'docs/mv/a/b', 'docs/mv/target', '--json']));
    expect(made.map((m) => m.created)).toEqual([true, true]);
    expect((await fsp.stat(hub.file('docs', 'mv/a/b'))).isDirectory()).toBe(true);
    const file = path.join(scratch, 'mv-src', 'note.txt');
    await writeFile(file, 'moving note\n');
    await ok(aliceHome, ['put', file, 'docs/mv/a']);

    await ok(aliceHome, ['mv', 'docs/mv/a/note.txt', 'docs/mv/target/']);
    expect(await exists(hub.file('docs', 'mv/a/note.txt'))).toBe(false);
    await waitForContent(peer, 'docs', 'mv/target/note.txt', 'moving note\n');
    await ok(aliceHome, ['mv', 'docs/mv/a', 'docs/mv/renamed']);
    expect((await fsp.stat(hub.file('docs', 'mv/renamed/b'))).isDirectory()).toBe(true);
    await waitFor(async () => (await exists(peer.file('docs', 'mv/renamed/b'))) && !(await exists(peer.file('docs', 'mv/a'))), { message: 'the moved directory on the peer' });

    const before = await treeSnapshot(hub.folderPath('docs'));
    const bad: [string, string[], RegExp][] = [
      [aliceHome, ['mv', 'docs/mv/renamed', 'docs/mv/target'], /CONFLICT/],
      [aliceHome, ['mv', 'docs/mv/renamed', 'docs/mv/renamed/b/inside'], /INVALID_REQUEST/],
      [aliceHome, ['mv', 'docs/mv/target/note.txt', 'docs/../escaped.txt'], /INVALID_PATH/],
      [aliceHome, ['mv', 'docs/mv/target/note.txt', 'photos/note.txt'], /INVALID_REQUEST/],
      [aliceHome, ['mv', 'docs/mv/ghost.txt', 'docs/mv/ghost2.txt'], /NOT_FOUND/],
      [aliceHome, ['mkdir', 'docs/mv/target/note.txt'], /CONFLICT/],
      [aliceHome, ['mkdir', 'docs/mv/target/note.txt/sub'], /CONFLICT/],
      [bobHome, ['mkdir', 'docs/bobdir'], /FORBIDDEN/],
      [bobHome, ['mv', 'docs/mv/target/note.txt', 'docs/stolen.txt'], /FORBIDDEN/],
    ];
    for (const [home, args, code] of bad) {
      const r = await run(home, [...args, '--json']);
      expect(r.code, describeRun(r, 'must fail')).not.toBe(0);
      expect(errorOf(r).code, describeRun(r, String(code))).toMatch(code);
    }
    expect(await treeSnapshot(hub.folderPath('docs'))).toEqual(before);
    const log = parseJsonOutput<{ action: string; path?: string; detail?: { to?: string } }[]>(await ok(aliceHome, ['log', '--json', '--path', 'docs/mv', '--user', 'alice']));
    expect(log.filter((e) => e.action === 'move').map((e) => [e.path, e.detail?.to])).toEqual([
      ['mv/a/note.txt', 'mv/target/note.txt'],
      ['mv/a', 'mv/renamed'],
    ]);
    expect(log.filter((e) => e.action === 'mkdir').map((e) => e.path)).toEqual(['mv/a/b', 'mv/target']);
  });

  it('finds names and text contents, and follows an edit', async () => {
    const dir = path.join(scratch, 'findme');
    await writeFile(path.join(dir, 'minutes.md'), '# Minutes\nWe agreed on the Zebra budget.\nNothing else.\n');
    await writeFile(path.join(dir, 'zebra-photo.jpg'), randomBytes(2000));
    await ok(aliceHome, ['put', dir, 'docs/']);
    const hits = parseJsonOutput<{ folder: string; path: string; nameMatch: boolean; lines: { line: number; text: string }[] }[]>(await ok(aliceHome, ['find', 'zebra', '--json']));
    expect(hits.map((h) => [h.path, h.nameMatch, h.lines.map((l) => l.line)])).toEqual([
      ['findme/minutes.md', false, [2]],
      ['findme/zebra-photo.jpg', true, []],
    ]);
    const text = await ok(aliceHome, ['find', 'zebra', '--type', 'md']);
    expect(text.stdout.trim()).toBe('docs/findme/minutes.md:2: We agreed on the Zebra budget.');

    // Edit the file on the node's disk directly (as a local user would): the watcher indexes
    // it, and the search follows without being asked.
    await fsp.writeFile(hub.file('docs', 'findme/minutes.md'), '# Minutes\nWe agreed on the Giraffe budget.\n');
    await waitFor(async () => {
      const h = parseJsonOutput<{ path: string }[]>(await ok(aliceHome, ['find', 'giraffe', '--json']));
      return h.length === 1 && h[0]!.path === 'findme/minutes.md';
    }, { message: 'the edit to be searchable' });
    const old = parseJsonOutput<{ path: string }[]>(await ok(aliceHome, ['find', 'zebra', '--json', '--in', 'docs/findme']));
    expect(old.map((h) => h.path)).toEqual(['findme/zebra-photo.jpg']);
    // Bob may read docs; nothing is found in folders he cannot read.
    expect(parseJsonOutput<unknown[]>(await ok(bobHome, ['find', 'giraffe', '--json']))).toHaveLength(1);
    const tooShort = await run(aliceHome, ['find', 'ab', '--json']);
    expect(tooShort.code).not.toBe(0);
    expect(errorOf(tooShort).code).toBe('INVALID_REQUEST');
    const noAccess = await run(bobHome, ['find', 'giraffe', '--in', 'photos', '--json']);
    expect(errorOf(noAccess).code).toBe('UNKNOWN_FOLDER');
  });

  it('pins the node identity on first login and refuses loudly when it changes', async () => {
    const known = path.join(aliceHome, 'known-nodes.json');
    const pins = JSON.parse(await fsp.readFile(known, 'utf8')) as Record<string, string>;
    expect(pins[`127.0.0.1:${hub.port}`]).toBe(hub.deviceId);
    const copy = path.join(scratch, 'alice-copy');
    await fsp.cp(aliceHome, copy, { recursive: true });
    await fsp.writeFile(path.join(copy, 'known-nodes.json'), JSON.stringify({ [`127.0.0.1:${hub.port}`]: peer.deviceId }));
    const r = await run(copy, ['ls']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('IDENTITY HAS CHANGED');
    expect(r.stderr).toContain(hub.deviceId);
    const again = await run(copy, ['login', url(), '--user', 'alice', '--password-stdin', '--json'], `${ALICE_PASSWORD}\n`);
    expect(again.code).not.toBe(0);
    expect(errorOf(again).code).toBe('CERTIFICATE_CHANGED');
    // Explicitly forgetting the node lets the user trust the new identity.
    await ok(copy, ['logout', url(), '--forget-node']);
    await ok(copy, ['login', url(), '--user', 'alice', '--password-stdin'], `${ALICE_PASSWORD}\n`);
    await ok(copy, ['ls']);
  });

  it('serves its OpenAPI description', async () => {
    const doc = await new Promise<any>((resolve, reject) => {
      request({ host: '127.0.0.1', port: hub.port, path: '/api/v1/openapi.json', rejectUnauthorized: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve(JSON.parse(body)));
      })
        .on('error', reject)
        .end();
    });
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/login', '/files/{path}', '/content/{path}', '/audit']));
  });
});
