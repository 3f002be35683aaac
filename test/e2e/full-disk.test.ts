/**
 * A receiver whose folder lives on a small disk (a 16 MiB tmpfs this test mounts; it runs as
 * root). A file larger than the free space is not downloaded at all: the folder reports why,
 * nothing is fetched for it again and again, no partial download holds the disk, and the other
 * files still arrive. Once there is room, the file arrives by itself.
 */
import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { folderStatus, MiB, sha256File, sleep, useCluster, waitFor, withLogsOnError, writeFile, writeRandomFile, type FerryNode } from './harness.js';

const cluster = useCluster('full-disk');
const FOLDER = 'docs';
const DISK = 16 * MiB;

let mountedAt: string | undefined;

afterAll(async () => {
  // The node holds the folder open: stop it before unmounting (the cluster removes the rest).
  for (const n of (await cluster.ready).nodes) await n.shutdown();
  if (mountedAt) execFileSync('umount', [mountedAt]);
});

async function freeBytes(dir: string): Promise<number> {
  const s = await fsp.statfs(dir);
  return s.bavail * s.bsize;
}

describe('a receiver with a full disk', () => {
  it('skips what does not fit, says why once, fetches nothing for it, and gets it once there is room', async () => {
    const c = await cluster.ready;
    let a!: FerryNode;
    let b!: FerryNode;
    const sums = new Map<string, string>();
    await withLogsOnError(c, async () => {
      a = await c.createNode('a');
      b = await c.createNode('b');
      const disk = b.folderPath(FOLDER);
      await fsp.mkdir(disk, { recursive: true });
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK}`, 'tmpfs', disk], { stdio: 'pipe' });
      } catch (err) {
        throw new Error(`cannot mount the ${DISK / MiB} MiB tmpfs this test needs at ${disk} (it must run as root): ${(err as { stderr?: Buffer }).stderr?.toString().trim() || String(err)}`);
      }
      mountedAt = disk;
      await a.addFolder(FOLDER);
      await b.addFolder(FOLDER);
      for (const [name, size] of [['mid.bin', 4 * MiB], ['big.bin', 24 * MiB]] as const) sums.set(name, await writeRandomFile(a.file(FOLDER, name), size));
      await writeFile(a.file(FOLDER, 'notes/todo.txt'), 'fits easily\n');
      await a.addPeer(b, [FOLDER]);
      await b.addPeer(a, [FOLDER]);
      await a.start();
      await b.start();
    });

    const disk = b.folderPath(FOLDER);
    const bigError = async () => folderStatus(await b.status(), FOLDER)?.errors.find((e) => e.path === 'big.bin');
    const error = await waitFor(bigError, { message: async () => `B to report big.bin as not fitting (B: ${JSON.stringify(folderStatus(await b.status(), FOLDER))})` });
    expect(error.message).toMatch(/^not enough free space for big\.bin: it needs 24\.0 MiB, the disk has \d+\.\d MiB free and Ferry leaves 163\.\d KiB \(1 % of it\) free$/);
    await waitFor(async () => (await fsp.readFile(b.file(FOLDER, 'notes/todo.txt'), 'utf8').catch(() => '')) === 'fits easily\n', { message: 'notes/todo.txt to reach B' });
    await waitFor(async () => (await sha256File(b.file(FOLDER, 'mid.bin')).catch(() => '')) === sums.get('mid.bin'), { message: 'mid.bin to reach B' });
    expect((await fsp.readdir(disk)).filter((n) => n.startsWith('.ferry.tmp.')), 'partial downloads on the full disk').toEqual([]);
    expect(await freeBytes(disk), 'free space B keeps for its user').toBeGreaterThan(10 * MiB);

    // Retries (the first after 5 s) ask the disk, not the peer.
    const before = (await b.counters()).bytesIn;
    await sleep(6500);
    expect((await b.counters()).bytesIn - before, 'bytes B received while big.bin could not fit').toBeLessThan(64 * 1024);
    expect(await bigError(), 'big.bin is still reported').toBeDefined();
    const events = (await fsp.readFile(b.logPath, 'utf8')).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; path?: string });
    const warnings = events.filter((e) => e.level === 40 && e.path === 'big.bin');
    expect(warnings.map((e) => e.msg), 'warnings about big.bin in B\'s log').toEqual(['cannot sync file; will retry']);

    // Room again (as when the user frees space elsewhere on the disk): no event, the retry finds it.
    execFileSync('mount', ['-o', `remount,size=${4 * DISK}`, disk]);
    await waitFor(async () => (await sha256File(b.file(FOLDER, 'big.bin')).catch(() => '')) === sums.get('big.bin'), {
      timeoutMs: 45_000,
      message: async () => `big.bin to reach B once there is room (B: ${JSON.stringify(folderStatus(await b.status(), FOLDER))})`,
    });
    await waitFor(async () => {
      const f = folderStatus(await b.status(), FOLDER);
      return f?.inSync && f.errors.length === 0;
    }, { message: async () => `B to report the folder in sync without errors (B: ${JSON.stringify(folderStatus(await b.status(), FOLDER))})` });
    expect((await fsp.readdir(disk)).filter((n) => n.startsWith('.ferry.tmp.'))).toEqual([]);
  }, 180_000);
});
