/**
 * A node whose folder lives on a small disk (a 24 MiB tmpfs this test mounts; it runs as root):
 * an upload larger than the free space is refused up front with 507, and a disk that fills up
 * while an upload streams fails that upload with 507 and removes its temporary file. Either
 * way the CLI exits non-zero and nothing else changes on the node.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_BIN, MiB, REPO_ROOT, exists, fillDisk, mountSmallDisk, sha256File, treeSnapshot, useCluster, waitFor, writeRandomFile } from './harness.js';
import { errorOf, startRemoteNode, type RemoteNode } from './remote-helpers.js';

const cluster = useCluster('remote-disk');
const DISK = 24 * MiB;

let r: RemoteNode;
/** The tmpfs: the folder `docs` is a directory in it, and the test fills the rest of it. */
let disk: string | undefined;

beforeAll(async () => {
  r = await startRemoteNode(await cluster.ready, 'small', ['docs'], async (node) => {
    const dir = path.dirname(node.folderPath('docs'));
    await mountSmallDisk(dir, DISK);
    disk = dir;
  });
}, 120_000);

afterAll(async () => {
  // The node holds the folder open: stop it before unmounting (the cluster removes the rest).
  for (const n of (await cluster.ready).nodes) await n.shutdown();
  if (disk) execFileSync('umount', [disk]);
});

/** Everything in the folder, Ferry's own files included. */
async function folderEntries(): Promise<string[]> {
  return (await fsp.readdir(r.node.folderPath('docs'), { recursive: true })).map(String).sort();
}

async function freeBytes(): Promise<number> {
  const s = await fsp.statfs(disk!);
  return s.bavail * s.bsize;
}

describe('remote uploads to a full disk', () => {
  it('refuses an upload larger than the free space up front, changing nothing', async () => {
    await r.cli.ok(r.alice, ['put', await writeFixture('small.txt', 'a small file\n'), 'docs/']);
    const before = await treeSnapshot(r.node.folderPath('docs'));
    const entries = await folderEntries();
    const free = await freeBytes();
    const big = path.join(r.scratch, 'big', 'big.bin');
    await writeRandomFile(big, 30 * MiB);
    // Both ways an upload starts: the block plan, and a whole-file upload with a claimed hash.
    for (const extra of [[], ['--sha256', await sha256File(big)]]) {
      const put = await r.cli.run(r.alice, ['put', big, 'docs/', '--json', ...extra]);
      expect(put.code).toBe(1);
      expect(errorOf(put)).toEqual({ code: 'INSUFFICIENT_STORAGE', message: expect.stringMatching(/not enough free space on the node for 31457280 bytes/) });
      const plain = await r.cli.run(r.alice, ['put', big, 'docs/', ...extra]);
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/^ferry: not enough free space/);
    }
    // One that would fit, but not with the 1 % the node leaves free (245 KiB of this disk).
    const almost = path.join(r.scratch, 'almost', 'almost.bin');
    await writeRandomFile(almost, free - 100 * 1024);
    const put = await r.cli.run(r.alice, ['put', almost, 'docs/', '--json']);
    expect(put.code).toBe(1);
    expect(errorOf(put)).toEqual({ code: 'INSUFFICIENT_STORAGE', message: expect.stringMatching(/of which the node leaves 2516\d\d free\)$/) });
    expect(await treeSnapshot(r.node.folderPath('docs'))).toEqual(before);
    expect(await folderEntries()).toEqual(entries);
    expect(await freeBytes()).toBe(free);
  }, 120_000);

  it('fails an upload cleanly when the disk fills up while it streams, and works again once there is room', async () => {
    const before = await treeSnapshot(r.node.folderPath('docs'));
    const entries = await folderEntries();
    const size = 16 * MiB;
    const src = path.join(r.scratch, 'fill', 'fill.bin');
    const sum = await writeRandomFile(src, size);
    expect(await freeBytes()).toBeGreaterThan(size);

    // A slow upload; once part of it is on the node, something else fills the disk.
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: r.scratch };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [FERRY_BIN, '--home', r.alice, 'put', src, 'docs/', '--json', '--limit-rate', '4M'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const partial = async () => (await fsp.readdir(r.node.folderPath('docs'))).filter((n) => n.startsWith('.ferry.tmp.upload-'));
    await waitFor(async () => {
      const [p] = await partial();
      return p !== undefined && (await fsp.stat(path.join(r.node.folderPath('docs'), p))).size >= 4 * MiB;
    }, { message: 'the upload to be under way', intervalMs: 50 });
    const filler = path.join(disk!, 'filler');
    await fillDisk(filler);
    expect(await freeBytes()).toBeLessThan(MiB);

    expect(await exited).toBe(1);
    expect(JSON.parse(stderr.trim())).toEqual({ error: { code: 'INSUFFICIENT_STORAGE', message: 'the node is out of disk space' } });
    // The temporary file is gone, and nothing else changed.
    expect(await partial()).toEqual([]);
    expect(await exists(r.node.file('docs', 'fill.bin'))).toBe(false);
    expect(await treeSnapshot(r.node.folderPath('docs'))).toEqual(before);
    expect(await folderEntries()).toEqual(entries);

    await fsp.rm(filler);
    const again = await r.cli.json<{ files: { transferred: number; resumedFrom: number }[] }>(r.alice, ['put', src, 'docs/']);
    expect(again.files[0]).toMatchObject({ transferred: size, resumedFrom: 0 });
    expect(await sha256File(r.node.file('docs', 'fill.bin'))).toBe(sum);
    expect(await partial()).toEqual([]);
  }, 120_000);
});

async function writeFixture(name: string, text: string): Promise<string> {
  const file = path.join(r.scratch, 'fixtures', name);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, text);
  return file;
}
