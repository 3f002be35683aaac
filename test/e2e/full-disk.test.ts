/**
 * A receiver whose folder lives on a small disk (a 16 MiB tmpfs this test mounts; it runs as
 * root). A file larger than the free space is not downloaded at all: the folder reports why,
 * nothing is fetched for it again and again, no partial download holds the disk, and the other
 * files still arrive. Once there is room, the file arrives by itself.
 */
import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fillDisk, folderStatus, MiB, mountSmallDisk, sha256File, sleep, useCluster, waitFor, withLogsOnError, writeFile, writeRandomFile, type FerryNode } from './harness.js';

const cluster = useCluster('full-disk');
const FOLDER = 'docs';
const DISK = 16 * MiB;

const mounts: string[] = [];

afterAll(async () => {
  // The nodes hold their files open: stop them before unmounting (the cluster removes the rest).
  for (const n of (await cluster.ready).nodes) await n.shutdown();
  for (const m of mounts) execFileSync('umount', [m]);
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
      await mountSmallDisk(b.folderPath(FOLDER), DISK);
      mounts.push(b.folderPath(FOLDER));
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

  it('under the index too: what could not be stored arrives once there is room', async () => {
    const c = await cluster.ready;
    let a!: FerryNode;
    let b!: FerryNode;
    const FILES = 40;
    await withLogsOnError(c, async () => {
      // Everything of b2 (home with its index, folder, log) on one small disk.
      await mountSmallDisk(path.join(c.root, 'b2'), 32 * MiB);
      mounts.push(path.join(c.root, 'b2'));
      a = await c.createNode('a2');
      b = await c.createNode('b2');
      for (const n of [a, b]) await n.addFolder('notes');
      await a.addPeer(b, ['notes']);
      await b.addPeer(a, ['notes']);
      await a.start();
      await b.start();
    });
    await writeFile(a.file('notes', 'first.txt'), 'before the disk filled up\n');
    await waitFor(async () => (await fsp.readFile(b.file('notes', 'first.txt'), 'utf8').catch(() => '')) === 'before the disk filled up\n', { message: 'first.txt to reach b2' });

    const filler = path.join(b.dir, 'filler.bin');
    await fillDisk(filler);
    const texts = Array.from({ length: FILES }, (_, i) => `note ${i}: ${'x'.repeat(3000)}\n`);
    for (const [i, t] of texts.entries()) await writeFile(a.file('notes', `n${i}.txt`), t);
    await waitFor(async () => (await fsp.readFile(b.logPath, 'utf8')).includes('cannot take in a message from peer'), { message: 'b2 to fail to store the new index' });

    await fsp.rm(filler);
    await waitFor(async () => {
      for (const [i, t] of texts.entries()) if ((await fsp.readFile(b.file('notes', `n${i}.txt`), 'utf8').catch(() => '')) !== t) return false;
      return true;
    }, { timeoutMs: 60_000, message: async () => `the ${FILES} notes to reach b2 once there is room (b2: ${JSON.stringify(folderStatus(await b.status(), 'notes'))})` });
  }, 180_000);
});
