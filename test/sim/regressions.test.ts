/**
 * Engine bugs the simulation found, reduced to deterministic checks (the seed that found each
 * one also stays in the simulation suite, see seeds.ts).
 */
import { describe, expect, it } from 'vitest';
import type { FileRecord } from '../../src/core/file-record.js';
import { compareVersions } from '../../src/core/version-vector.js';
import { decide } from '../../src/engine/decide.js';
import { fileRecord, recordFor, seededBytes } from '../../src/engine/test-support.js';

const A = 'AAAAAAA';
const W = 'WWWWWWW';
const T = 1_700_000_000_000;

const file = (data: Buffer, version: Record<string, number>, by: string, mtimeMs: number): FileRecord =>
  recordFor('with space.txt', data, [100, 100, 100], { version, modifiedBy: by, mtimeMs });
const gone = (version: Record<string, number>, by: string, mtimeMs: number): FileRecord =>
  fileRecord('with space.txt', { deleted: true, version, modifiedBy: by, mtimeMs, size: 0, blocks: [] });

describe('decide: a version superseded by one record and concurrent with another (seed 5)', () => {
  // Node W wrote w71. Node A, not having seen it, wrote a72, then deleted the file (a73).
  // Some nodes hold w71, one holds a72 (it missed the deletion), A holds the deletion.
  const w71 = file(seededBytes(300, 1), { [W]: 71 }, W, T);
  const a72 = file(seededBytes(300, 2), { [A]: 72 }, A, T + 300);
  const a73 = gone({ [A]: 73 }, A, T + 400);

  it('every node ends with the same content', () => {
    // The winner among all three: a73 supersedes a72; of a73 and w71 (concurrent), the file beats the deletion.
    let states = [a73, a72, w71];
    for (let round = 0; round < 5; round++) {
      states = states.map((local, i) => {
        const d = decide(local, states.filter((_, j) => j !== i));
        return d.kind === 'none' ? local : d.record;
      });
    }
    const contents = states.map((r) => (r.deleted ? 'deleted' : r.blocks.map((b) => b.hash.toString('hex')).join()));
    expect(new Set(contents).size).toBe(1);
    expect(states[0]!.deleted).toBe(false);
    expect(contents[0]).toBe(w71.blocks.map((b) => b.hash.toString('hex')).join());
  });

  it('the node holding the superseded a72 takes w71 without a conflict copy', () => {
    const d = decide(a72, [a73, w71]);
    expect(d).toMatchObject({ kind: 'apply', conflictCopy: false });
    if (d.kind === 'apply') expect(compareVersions(d.record.version, w71.version)).not.toBe('lesser');
  });

  it('the node holding the deletion brings the file back (edit beats delete)', () => {
    const d = decide(a73, [w71, a72]);
    expect(d.kind).toBe('apply');
    if (d.kind === 'apply') expect(d.record.deleted).toBe(false);
  });
});

describe('FolderSync: a newer record that arrives while the older one downloads (seed 108)', () => {
  it('is pulled after the download, not forgotten', async () => {
    const { FolderSync } = await import('../../src/engine/folder-sync.js');
    const { makeTestFolder } = await import('../../src/engine/test-support.js');
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const tf = makeTestFolder('f1', 'LOCAL01');
    const DEV = 'REMOTE1-DEVICE';
    const R = 'RRRRRRR';
    const v1 = seededBytes(1000, 1);
    const v2 = seededBytes(1000, 2);
    const r1 = recordFor('doc.txt', v1, [1000], { version: { [R]: 1 }, modifiedBy: R, sequence: 1, size: 1000 });
    const r2 = recordFor('doc.txt', v2, [1000], { version: { [R]: 2 }, modifiedBy: R, sequence: 2, size: 1000, mtimeMs: T + 1000 });
    const byHash = new Map([v1, v2].map((d, i) => [[r1, r2][i]!.blocks[0]!.hash.toString('hex'), d]));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let firstFetch!: () => void;
    const fetching = new Promise<void>((r) => (firstFetch = r));
    const folder = new FolderSync(tf.ctx, {
      devices: () => [DEV],
      fetchBlock: (record) => ({
        fetch: async (blocks) => {
          if (record.version[R] === 1) {
            firstFetch();
            await gate;
          }
          return { data: Buffer.concat(blocks.map((b) => byHash.get(b.hash.toString('hex'))!)) };
        },
      }),
      onLocalChange: () => undefined,
      rescanSeconds: 3600,
      watch: false,
    });
    try {
      await folder.start();
      tf.store.resetRemote('f1', DEV, 'index1');
      tf.store.putRemote('f1', DEV, [r1]);
      folder.remoteChanged([r1]);
      await fetching;
      tf.store.putRemote('f1', DEV, [r2]);
      folder.remoteChanged([r2]);
      release();
      await folder.settle();
      expect(readFileSync(join(tf.root, 'doc.txt')).equals(v2)).toBe(true);
      expect(folder.quiet).toBe(true);
    } finally {
      await folder.stop();
      tf.cleanup();
    }
  });
});

describe('FolderSync: a file replaces a directory that holds files here (seeds 310, 320, 328)', () => {
  it('keeps the directory with a newer version instead of retrying forever', async () => {
    const { FolderSync } = await import('../../src/engine/folder-sync.js');
    const { makeTestFolder } = await import('../../src/engine/test-support.js');
    const { mkdirSync, writeFileSync, lstatSync } = await import('node:fs');
    const { join } = await import('node:path');
    const tf = makeTestFolder('f1', 'LOCAL01');
    const DEV = 'REMOTE1-DEVICE';
    const R = 'RRRRRRR';
    mkdirSync(join(tf.root, 'd'));
    writeFileSync(join(tf.root, 'd', 'x.txt'), 'only here\n');
    const data = seededBytes(500, 7);
    const folder = new FolderSync(tf.ctx, {
      devices: () => [DEV],
      fetchBlock: () => ({ fetch: async () => ({ data }) }),
      onLocalChange: () => undefined,
      rescanSeconds: 3600,
      watch: false,
    });
    try {
      await folder.start();
      const dir = tf.store.getLocal('f1', 'd')!.record;
      // The other side saw the directory (not x.txt), removed it and wrote a file under its name.
      const file = recordFor('d', data, [500], { version: { ...dir.version, [R]: 5 }, modifiedBy: R, sequence: 3, size: 500 });
      tf.store.resetRemote('f1', DEV, 'index1');
      tf.store.putRemote('f1', DEV, [file]);
      folder.remoteChanged([file]);
      await folder.settle();
      expect(lstatSync(join(tf.root, 'd')).isDirectory()).toBe(true);
      expect(lstatSync(join(tf.root, 'd', 'x.txt')).isFile()).toBe(true);
      const kept = tf.store.getLocal('f1', 'd')!.record;
      expect(kept.type).toBe('dir');
      expect(compareVersions(kept.version, file.version)).toBe('greater');
      expect(folder.quiet).toBe(true);
    } finally {
      await folder.stop();
      tf.cleanup();
    }
  });
});

describe('regression: the watcher folds a create and a delete into nothing (real-process seeds 1 and 2)', () => {
  // Fixed: scanned paths bring their directory's vanished entries with them (Scanner.vanishedSiblings).
  it('a file saved atomically and renamed away at once is seen as gone', async () => {
    const { makeTestFolder, soloFolderSync } = await import('../../src/engine/test-support.js');
    const { writeFileSync, renameSync, mkdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    const tf = makeTestFolder('f1', 'LOCAL01');
    writeFileSync(join(tf.root, 'h.txt'), 'old\n');
    const folder = soloFolderSync(tf.ctx, { watch: true });
    try {
      await folder.start();
      expect(tf.store.getLocal('f1', 'h.txt')?.record.deleted).toBe(false);
      await new Promise((r) => setTimeout(r, 300));
      // An editor's save (a new file renamed over the old one), then a rename right after.
      mkdirSync(join(tf.base, 'stage'));
      writeFileSync(join(tf.base, 'stage', 's'), 'new\n');
      renameSync(join(tf.base, 'stage', 's'), join(tf.root, 'h.txt'));
      renameSync(join(tf.root, 'h.txt'), join(tf.root, 'c.txt')); // the watcher reports only c.txt
      await new Promise((r) => setTimeout(r, 1500));
      await folder.settle();
      expect(tf.store.getLocal('f1', 'c.txt')?.record.deleted).toBe(false);
      expect(tf.store.getLocal('f1', 'h.txt')?.record.deleted).toBe(true);
    } finally {
      await folder.stop();
      tf.cleanup();
    }
  });
});
