import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { blockOffsets } from '../core/file-record.js';
import { compareVersions } from '../core/version-vector.js';
import { FolderSync, pullErrorMessage } from './folder-sync.js';
import { Scanner } from './scanner.js';
import { fileRecord, makeTestFolder, recordFor, seededBytes, soloFolderSync, type TestFolder } from './test-support.js';
import { FolderWatcher } from './watcher.js';

let t: TestFolder;
let folder: FolderSync;

beforeEach(async () => {
  t = makeTestFolder('f1', 'LOCAL01');
  folder = soloFolderSync(t.ctx, { watch: false });
  await folder.start();
});

afterEach(async () => {
  await folder.stop();
  t.cleanup();
});

describe('serving blocks to peers', () => {
  it('serves the current version, and refuses blocks of a version that was replaced (never other bytes)', async () => {
    const v1 = seededBytes(400 * 1024, 1);
    writeFileSync(join(t.root, 'a.bin'), v1);
    await folder.scanNow();
    const old = t.store.getLocal('f1', 'a.bin')!.record;
    const v2 = seededBytes(400 * 1024, 2); // same size, other bytes
    writeFileSync(join(t.root, 'a.bin'), v2);
    await folder.scanNow();
    const current = t.store.getLocal('f1', 'a.bin')!.record;

    const range = (blocks: typeof old.blocks, offset: number) => ({
      type: 'range' as const,
      folder: 'f1',
      path: 'a.bin',
      offset,
      blocks: blocks.map((b) => ({ size: b.size, hash: b.hash.toString('hex') })),
    });
    const offsets = blockOffsets(current.blocks);
    const data = await folder.serveRange(range(current.blocks.slice(1, 3), offsets[1]!));
    const want = v2.subarray(offsets[1]!, offsets[3] ?? v2.length);
    expect(data.equals(want)).toBe(true);

    await expect(folder.serveRange(range(old.blocks.slice(0, 1), 0))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('serves a large range read in the thread pool, and nothing once the file changed on disk', async () => {
    const data = seededBytes(2 * 1024 * 1024 + 5, 3);
    writeFileSync(join(t.root, 'big.bin'), data);
    await folder.scanNow();
    const rec = t.store.getLocal('f1', 'big.bin')!.record;
    const req = { type: 'range' as const, folder: 'f1', path: 'big.bin', offset: 0, blocks: rec.blocks.map((b) => ({ size: b.size, hash: b.hash.toString('hex') })) };
    expect((await folder.serveRange(req)).equals(data)).toBe(true);
    writeFileSync(join(t.root, 'big.bin'), seededBytes(data.length, 4)); // not rescanned
    await expect(folder.serveRange(req)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('status', () => {
  it('shows a scan that hashes a large file as scanning, with its progress, until it is done', async () => {
    const size = 48 * 1024 * 1024;
    writeFileSync(join(t.root, 'big.bin'), seededBytes(size, 5));
    let done = false;
    const scan = folder.rescan().finally(() => (done = true));
    const seen: NonNullable<ReturnType<typeof folder.status>['scan']>[] = [];
    while (!done) {
      const s = folder.status();
      if (s.scan) {
        expect(s.state).toBe('scanning');
        seen.push(s.scan);
      }
      await new Promise((r) => setImmediate(r));
    }
    await scan;
    expect(seen.length).toBeGreaterThan(1);
    for (const p of seen) expect(p).toMatchObject({ filesToHash: 1, bytesToHash: size, hashedFiles: 0 });
    const hashed = seen.map((p) => p.hashedBytes);
    expect(hashed).toEqual([...hashed].sort((a, b) => a - b));
    expect(hashed.at(-1)).toBeGreaterThan(hashed[0]!);
    expect(folder.status().scan).toBeUndefined();
    expect(folder.status().state).toBe('idle');
  });
});

describe('starting', () => {
  it('an edit made while the folder starts is seen: the watcher is subscribed before the first scan', async () => {
    const t2 = makeTestFolder('f2', 'LOCAL02');
    writeFileSync(join(t2.root, 'doc.txt'), 'first');
    const original = FolderWatcher.start.bind(FolderWatcher);
    // The edit lands just before the watcher subscribes: only a scan that runs after it sees it.
    const spy = vi.spyOn(FolderWatcher, 'start').mockImplementation(async (...args) => {
      writeFileSync(join(t2.root, 'doc.txt'), 'second, longer');
      return original(...args);
    });
    const watched = soloFolderSync(t2.ctx, { watch: true });
    try {
      await watched.start();
      await watched.settle();
      expect(spy).toHaveBeenCalledTimes(1);
      expect(t2.store.getLocal('f2', 'doc.txt')?.record.size).toBe('second, longer'.length);
    } finally {
      spy.mockRestore();
      await watched.stop();
      t2.cleanup();
    }
  });
});

describe('a folder that is not there', () => {
  it('is neither scanned nor taken for deleted while its marker is missing, and syncs again once it is back', async () => {
    writeFileSync(join(t.root, 'a.txt'), 'kept');
    mkdirSync(join(t.root, 'sub'));
    writeFileSync(join(t.root, 'sub/b.txt'), 'kept too');
    await folder.scanNow();
    const live = () => [...t.store.allLocal('f1').values()].filter((e) => !e.record.deleted).map((e) => e.record.path).sort();
    expect(live()).toEqual(['a.txt', 'sub', 'sub/b.txt']);
    const sequence = t.store.getLocal('f1', 'a.txt')!.record.sequence;

    // An unmounted disk: an empty directory where the folder was.
    renameSync(t.root, `${t.root}.disk`);
    mkdirSync(t.root);
    const summary = await folder.rescan();
    expect(summary.errors).toBe(1);
    expect(live()).toEqual(['a.txt', 'sub', 'sub/b.txt']);
    const status = folder.status();
    expect(status.state).toBe('error');
    expect(status.errors[0]).toEqual({ path: '.', message: expect.stringMatching(/\.ferry-folder is missing/) });
    expect(t.logger.lines.some((l) => l.level === 'error' && l.msg === 'folder unavailable; not scanning or pulling it')).toBe(true);

    // Mounted again: nothing changed, nothing to do.
    rmSync(t.root, { recursive: true });
    renameSync(`${t.root}.disk`, t.root);
    await folder.scanNow();
    expect(folder.status().state).toBe('idle');
    expect(folder.status().errors).toEqual([]);
    expect(t.store.getLocal('f1', 'a.txt')!.record.sequence).toBe(sequence);

    // Emptied on purpose, marker made again by the user: now the deletions count.
    rmSync(t.root, { recursive: true });
    mkdirSync(t.root);
    writeFileSync(join(t.root, '.ferry-folder'), '');
    await folder.scanNow();
    expect(live()).toEqual([]);
    expect(t.store.getLocal('f1', 'a.txt')!.record.deleted).toBe(true);
  });

  it('holding only directories is still protected: they are not taken for deleted', async () => {
    mkdirSync(join(t.root, 'photos/2026'), { recursive: true });
    await folder.scanNow();
    expect(t.store.getLocal('f1', 'photos/2026')?.record.deleted).toBe(false);
    renameSync(t.root, `${t.root}.disk`);
    mkdirSync(t.root);
    expect((await folder.rescan()).errors).toBe(1);
    expect(folder.status().state).toBe('error');
    expect(t.store.getLocal('f1', 'photos/2026')?.record.deleted).toBe(false);
  });

  it('is looked at again on its own, and scanned once it is back', async () => {
    writeFileSync(join(t.root, 'a.txt'), 'kept');
    await folder.scanNow();
    await folder.stop();
    unlinkSync(join(t.root, '.ferry-folder'));
    const timers: { fn: () => void; ms: number }[] = [];
    const clock = { now: () => Date.now(), setInterval: () => setInterval(() => undefined, 1e9), setTimeout: (fn: () => void, ms: number) => (timers.push({ fn, ms }), setTimeout(() => undefined, 0)) };
    folder = soloFolderSync(t.ctx, { watch: false, clock });
    await folder.start();
    expect(folder.status().state).toBe('error');
    const check = timers.find((x) => x.ms === 10_000);
    expect(check).toBeDefined();
    writeFileSync(join(t.root, '.ferry-folder'), '');
    writeFileSync(join(t.root, 'new.txt'), 'found after the marker came back');
    check!.fn();
    await folder.settle();
    expect(folder.status().state).toBe('idle');
    expect(t.store.getLocal('f1', 'new.txt')?.record.size).toBe('found after the marker came back'.length);
  });
});

describe('a burst of watcher reports', () => {
  it('of 1,000 paths or more is followed by a full rescan, which finds what the watcher did not report', async () => {
    await folder.stop();
    const timers: { fn: () => void; ms: number }[] = [];
    const clock = { now: () => Date.now(), setInterval: () => setInterval(() => undefined, 1e9), setTimeout: (fn: () => void, ms: number) => (timers.push({ fn, ms }), setTimeout(() => undefined, 0)) };
    folder = soloFolderSync(t.ctx, { watch: false, clock });
    await folder.start();
    const lastBurstTimer = () => timers.filter((x) => x.ms === 2000).at(-1)!;

    const few = Array.from({ length: 5 }, (_, i) => `few/${i}.txt`);
    mkdirSync(join(t.root, 'few'));
    for (const p of few) writeFileSync(join(t.root, p), p);
    writeFileSync(join(t.root, 'few/unreported.txt'), 'not reported');
    folder.watcherReported(few);
    await folder.settle();
    lastBurstTimer().fn();
    await folder.settle();
    expect(t.store.getLocal('f1', 'few/4.txt')).toBeDefined();
    expect(t.store.getLocal('f1', 'few/unreported.txt')).toBeUndefined(); // a small burst: no rescan

    const many = Array.from({ length: 1200 }, (_, i) => `many/${i}.txt`);
    mkdirSync(join(t.root, 'many'));
    for (const p of many) writeFileSync(join(t.root, p), p);
    writeFileSync(join(t.root, 'many/unreported.txt'), 'not reported either');
    folder.watcherReported(many.slice(0, 600));
    folder.watcherReported(many.slice(600));
    await folder.settle();
    expect(t.store.getLocal('f1', 'many/1199.txt')).toBeDefined();
    expect(t.store.getLocal('f1', 'many/unreported.txt')).toBeUndefined();
    lastBurstTimer().fn();
    await folder.settle();
    expect(t.store.getLocal('f1', 'many/unreported.txt')?.record.size).toBe('not reported either'.length);
    expect(t.store.getLocal('f1', 'few/unreported.txt')).toBeDefined();
  });
});

describe("the watcher's echo of a pull", () => {
  it('a directory reported while the pull was still filling it is not scanned once the pull is done', async () => {
    await folder.stop();
    const files = Array.from({ length: 5 }, (_, i) => ({ path: `made/f${i}.txt`, data: seededBytes(300 + i, 70 + i) }));
    const blocks = new Map<string, Buffer>();
    for (const f of files) blocks.set(recordFor(f.path, f.data, [f.data.length]).blocks[0]!.hash.toString('hex'), f.data);
    let reported = false;
    const pulling = new FolderSync(t.ctx, {
      devices: () => ['REMOTE1'],
      fetchBlock: () => ({
        fetch: async (wanted) => {
          // Reported as the watcher would: while the pull is still writing into the directory.
          if (!reported) {
            reported = true;
            pulling.watcherReported(['made']);
          }
          return { data: blocks.get(wanted[0]!.hash.toString('hex'))!, from: 'REMOTE1' };
        },
      }),
      onLocalChange: () => undefined,
      rescanSeconds: 3600,
      watch: true,
    });
    folder = pulling;
    const remote = [
      fileRecord('made', { type: 'dir', mode: 0o755, version: { REMOTE1: 1 }, modifiedBy: 'REMOTE1', sequence: 1 }),
      ...files.map((f, i) => recordFor(f.path, f.data, [f.data.length], { version: { REMOTE1: 1 }, modifiedBy: 'REMOTE1', sequence: i + 2 })),
    ];
    t.store.putRemote('f1', 'REMOTE1', remote);
    const scans = vi.spyOn(Scanner.prototype, 'scanPaths');
    await pulling.start();
    await vi.waitFor(() => expect(pulling.quiet).toBe(true));
    await pulling.settle();
    for (const f of files) expect(readFileSync(join(t.root, f.path)).equals(f.data)).toBe(true);
    expect(reported).toBe(true);
    expect(scans).not.toHaveBeenCalled();
    expect(t.store.getLocal('f1', 'made')!.record.version).toEqual({ REMOTE1: 1 });
    scans.mockRestore();
  });
});

describe('a pull that keeps failing', () => {
  it('is retried after 5 s, then twice as long each time up to a minute, said once in the log; at once when a peer connects; a success starts over at 5 s', async () => {
    await folder.stop();
    const timers: { fn: () => void; ms: number }[] = [];
    const clock = { now: () => Date.now(), setInterval: () => setInterval(() => undefined, 1e9), setTimeout: (fn: () => void, ms: number) => (timers.push({ fn, ms }), setTimeout(() => undefined, 0)) };
    const data = seededBytes(1000, 80);
    const record = recordFor('away.bin', data, [data.length], { version: { REMOTE1: 1 }, modifiedBy: 'REMOTE1', sequence: 1 });
    let peerHasIt = false;
    folder = new FolderSync(t.ctx, {
      devices: () => ['REMOTE1'],
      fetchBlock: () => ({
        fetch: async () => {
          if (!peerHasIt) throw new Error('peer gone');
          return { data, from: 'REMOTE1' };
        },
      }),
      onLocalChange: () => undefined,
      rescanSeconds: 3600,
      watch: false,
      clock,
    });
    t.store.putRemote('f1', 'REMOTE1', [record]);
    await folder.start();
    await folder.settle();
    const retry = async () => {
      timers.at(-1)!.fn();
      await folder.settle();
    };
    for (let i = 0; i < 6; i++) await retry();
    expect(timers.map((x) => x.ms)).toEqual([5000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
    expect(folder.status().errors).toEqual([{ path: 'away.bin', message: 'peer gone' }]);
    const said = (level: string) => t.logger.lines.filter((l) => l.level === level && /cannot sync file/.test(l.msg ?? '')).length;
    expect([said('warn'), said('debug')]).toEqual([1, 6]);

    // A peer that connects is a reason to try at once, whatever the back-off says.
    peerHasIt = true;
    const timersBefore = timers.length;
    folder.peerConnected();
    await folder.settle();
    expect(timers.length).toBe(timersBefore); // no timer was needed
    expect(readFileSync(join(t.root, 'away.bin')).equals(data)).toBe(true);
    expect(folder.status().errors).toEqual([]);
    const other = seededBytes(1000, 81);
    const next = recordFor('later.bin', other, [other.length], { version: { REMOTE1: 1 }, modifiedBy: 'REMOTE1', sequence: 2 });
    peerHasIt = false;
    const before = timers.length;
    t.store.putRemote('f1', 'REMOTE1', [next]);
    folder.remoteChanged([next]);
    await folder.settle();
    expect(folder.status().errors).toEqual([{ path: 'later.bin', message: 'peer gone' }]);
    expect(timers.slice(before).map((x) => x.ms)).toEqual([5000]);
  });
});

describe('pulled files whose index entries cannot be written', () => {
  it('(a full disk under the index) are taken up again by the next pull: same content, no conflict copies, nothing lost', async () => {
    await folder.stop();
    const files = [1, 2, 3].map((i) => {
      const data = seededBytes(3000 + i, 90 + i);
      return { data, record: recordFor(`in/${i}.bin`, data, [data.length], { version: { REMOTE1: i }, modifiedBy: 'REMOTE1', sequence: i }) };
    });
    const byPath = new Map(files.map((f) => [f.record.path, f.data]));
    folder = new FolderSync(t.ctx, {
      devices: () => ['REMOTE1'],
      fetchBlock: (record) => ({ fetch: async () => ({ data: byPath.get(record.path)!, from: 'REMOTE1' }) }),
      onLocalChange: () => undefined,
      rescanSeconds: 3600,
      watch: false,
    });
    const commitLocal = t.store.commitLocal.bind(t.store);
    let indexFull = true;
    let failures = 0;
    const spy = vi.spyOn(t.store, 'commitLocal').mockImplementation((id, entries) => {
      if (indexFull) {
        failures++;
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      }
      return commitLocal(id, entries);
    });
    t.store.putRemote('f1', 'REMOTE1', files.map((f) => f.record));
    await folder.start();
    await folder.settle();
    expect(failures).toBeGreaterThan(0);
    for (const f of files) {
      expect(readFileSync(join(t.root, f.record.path)).equals(f.data)).toBe(true); // on disk, not in the index
      expect(t.store.getLocal('f1', f.record.path)).toBeUndefined();
    }
    const errors = [...folder.status().errors].sort((a, b) => (a.path < b.path ? -1 : 1));
    expect(errors).toEqual(files.map((f) => ({ path: f.record.path, message: 'pulled, but cannot be recorded in the index: database or disk is full' })));
    expect(folder.status().needFiles).toBe(0); // nothing is fetched again meanwhile
    const attempts = failures;
    folder.peerConnected();
    await folder.settle();
    expect(failures).toBe(attempts + 1); // tried again, still full: waits for the next retry

    indexFull = false; // the disk has room again
    folder.peerConnected();
    await folder.settle();
    expect(folder.status().errors).toEqual([]);
    expect(folder.status().needFiles).toBe(0);
    for (const f of files) {
      const local = t.store.getLocal('f1', f.record.path)!.record;
      expect(local.blocks.map((b) => b.hash)).toEqual(f.record.blocks.map((b) => b.hash));
      expect(readFileSync(join(t.root, f.record.path)).equals(f.data)).toBe(true);
    }
    expect(readdirSync(join(t.root, 'in')).sort()).toEqual(['1.bin', '2.bin', '3.bin']); // no conflict copies
    spy.mockRestore();
  });

  it('and the node stopped before it could record them: the next start finds them as they are, with no conflict copies', async () => {
    await folder.stop();
    const data = seededBytes(5000, 95);
    const record = recordFor('in/x.bin', data, [data.length], { version: { REMOTE1: 4 }, modifiedBy: 'REMOTE1', sequence: 4 });
    const options = {
      devices: () => ['REMOTE1'],
      fetchBlock: () => ({ fetch: async () => ({ data, from: 'REMOTE1' }) }),
      onLocalChange: () => undefined,
      rescanSeconds: 3600,
      watch: false,
    };
    folder = new FolderSync(t.ctx, options);
    const spy = vi.spyOn(t.store, 'commitLocal').mockImplementation(() => {
      throw new Error('database or disk is full');
    });
    t.store.putRemote('f1', 'REMOTE1', [record]);
    await folder.start();
    await folder.settle();
    await folder.stop(); // what it pulled was never recorded
    spy.mockRestore();
    expect(readFileSync(join(t.root, 'in/x.bin')).equals(data)).toBe(true);

    folder = new FolderSync(t.ctx, options);
    await folder.start();
    await folder.settle();
    const local = t.store.getLocal('f1', 'in/x.bin')!.record;
    expect(local.blocks.map((b) => b.hash)).toEqual(record.blocks.map((b) => b.hash));
    expect(local.version).toMatchObject({ REMOTE1: 4 }); // the peer's edit is known to be in it
    expect(folder.status()).toMatchObject({ errors: [], needFiles: 0 });
    expect(readdirSync(join(t.root, 'in'))).toEqual(['x.bin']);
  });
});

describe('what a failed pull says', () => {
  it('names the directory and what to check for the usual local causes; other errors as they are', () => {
    const root = '/home/u/Docs';
    const at = (code: string, path?: string) => Object.assign(new Error(`${code}: operation failed, open '${path}'`), { code, path });
    expect(pullErrorMessage(at('EPERM', `${root}/photos/2026/.ferry.tmp.0123456789abcdef`), root)).toBe('no permission to write in photos/2026 (EPERM): check its owner, mode and attributes (chattr)');
    expect(pullErrorMessage(at('EACCES', `${root}/.ferry.tmp.0123456789abcdef`), root)).toBe("no permission to write in the folder's top directory (EACCES): check its owner, mode and attributes (chattr)");
    expect(pullErrorMessage(at('EROFS', `${root}/a/.ferry.tmp.0123456789abcdef`), root)).toBe("the folder's disk is read-only (EROFS)");
    expect(pullErrorMessage(at('EIO', `${root}/a/b`), root)).toBe(`EIO: operation failed, open '${root}/a/b'`);
  });

  it('a directory that cannot be written (immutable) shows up in status that way', async () => {
    await folder.stop();
    const data = seededBytes(500, 90);
    const record = recordFor('locked/new.txt', data, [data.length], { version: { REMOTE1: 1 }, modifiedBy: 'REMOTE1', sequence: 1 });
    mkdirSync(join(t.root, 'locked'));
    execFileSync('chattr', ['+i', join(t.root, 'locked')]);
    try {
      folder = new FolderSync(t.ctx, {
        devices: () => ['REMOTE1'],
        fetchBlock: () => ({ fetch: async () => ({ data, from: 'REMOTE1' }) }),
        onLocalChange: () => undefined,
        rescanSeconds: 3600,
        watch: false,
      });
      t.store.putRemote('f1', 'REMOTE1', [record]);
      await folder.start();
      await folder.settle();
      expect(folder.status().errors).toEqual([{ path: 'locked/new.txt', message: 'no permission to write in locked (EPERM): check its owner, mode and attributes (chattr)' }]);
    } finally {
      execFileSync('chattr', ['-i', join(t.root, 'locked')]);
    }
  });
});

describe('folder modes', () => {
  /** A folder of `mode` shared with REMOTE1, which serves `files` (path → bytes). */
  async function startWithMode(mode: 'send-only' | 'receive-only', files: Map<string, Buffer>, announced: string[] = []): Promise<void> {
    await folder.stop();
    folder = new FolderSync(t.ctx, {
      devices: () => ['REMOTE1'],
      fetchBlock: (record) => ({ fetch: async () => ({ data: files.get(record.path)!, from: 'REMOTE1' }) }),
      onLocalChange: () => void announced.push('change'),
      rescanSeconds: 3600,
      watch: false,
      mode,
    });
    await folder.start();
  }

  /** REMOTE1 announces `path` with `text`, its version counting past `over` (what it has seen). */
  function remoteFile(files: Map<string, Buffer>, path: string, text: string, over: Record<string, number> = {}, deleted = false): void {
    const data = Buffer.from(text);
    files.set(path, data);
    const record = deleted
      ? fileRecord(path, { deleted: true, version: { ...over, REMOTE1: (over.REMOTE1 ?? 0) + 1 }, modifiedBy: 'REMOTE1' })
      : recordFor(path, data, [data.length], { version: { ...over, REMOTE1: (over.REMOTE1 ?? 0) + 1 }, modifiedBy: 'REMOTE1' });
    t.store.putRemote('f1', 'REMOTE1', [record]);
    folder.remoteChanged([record]);
  }

  const read = (path: string) => readFileSync(join(t.root, path), 'utf8');
  const version = (path: string) => t.store.getLocal('f1', path)!.record.version;

  it("send-only: the peers' changes are not applied but counted; override makes this device's copy win, and deletes what it lacks", async () => {
    const files = new Map<string, Buffer>();
    const announced: string[] = [];
    writeFileSync(join(t.root, 'mine.txt'), 'the master copy');
    writeFileSync(join(t.root, 'same.txt'), 'identical');
    await startWithMode('send-only', files, announced);
    const before = version('mine.txt');
    remoteFile(files, 'mine.txt', 'an edit on the peer', before);
    const peers = t.store.remoteFor('f1', 'mine.txt')[0]!.record.version;
    remoteFile(files, 'new.txt', 'made on the peer');
    remoteFile(files, 'same.txt', 'identical'); // concurrent, same bytes: taken as is (nothing on disk changes)
    await folder.settle();
    expect(read('mine.txt')).toBe('the master copy');
    expect(readdirSync(t.root).filter((n) => !n.startsWith('.ferry')).sort()).toEqual(['mine.txt', 'same.txt']);
    expect(folder.status()).toMatchObject({ mode: 'send-only', needFiles: 0, notApplied: 2, notSent: 0 });
    expect(version('same.txt')).toMatchObject({ REMOTE1: 1 }); // adopted

    announced.length = 0;
    expect(await folder.override()).toEqual(['mine.txt', 'new.txt']);
    const mine = t.store.getLocal('f1', 'mine.txt')!.record;
    expect(mine).toMatchObject({ deleted: false, modifiedBy: 'LOCAL01' });
    expect([compareVersions(mine.version, peers), compareVersions(mine.version, before)]).toEqual(['greater', 'greater']); // past the peer's edit and its own
    const gone = t.store.getLocal('f1', 'new.txt')!.record;
    expect(gone).toMatchObject({ deleted: true, modifiedBy: 'LOCAL01' });
    expect(compareVersions(gone.version, t.store.remoteFor('f1', 'new.txt')[0]!.record.version)).toBe('greater');
    expect(folder.status()).toMatchObject({ notApplied: 0, needFiles: 0 });
    expect(announced.length).toBeGreaterThan(0);
    expect(read('mine.txt')).toBe('the master copy');
    await expect(new FolderSync(t.ctx, { devices: () => [], fetchBlock: () => ({ fetch: async () => ({ data: Buffer.alloc(0), from: '' }) }), onLocalChange: () => undefined, rescanSeconds: 3600, watch: false }).override()).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it("receive-only: changes made here stay here and are not announced; revert takes the peers' copy back and keeps ours as versions", async () => {
    const files = new Map<string, Buffer>();
    await startWithMode('receive-only', files);
    remoteFile(files, 'a.txt', 'from the peer');
    remoteFile(files, 'b.txt', 'also from the peer');
    remoteFile(files, 'c.txt', 'left alone');
    await folder.settle();
    expect([read('a.txt'), read('b.txt'), read('c.txt')]).toEqual(['from the peer', 'also from the peer', 'left alone']);

    writeFileSync(join(t.root, 'a.txt'), 'edited here');
    unlinkSync(join(t.root, 'b.txt'));
    writeFileSync(join(t.root, 'own.txt'), 'made here');
    mkdirSync(join(t.root, 'owndir'));
    writeFileSync(join(t.root, 'owndir', 'x.txt'), 'made here too');
    await folder.scanNow();
    expect(folder.status()).toMatchObject({ mode: 'receive-only', notSent: 5, notApplied: 0, needFiles: 0 });
    for (const p of ['a.txt', 'b.txt', 'own.txt', 'owndir', 'owndir/x.txt']) expect(folder.announces(t.store.getLocal('f1', p)!.record), p).toBe(false);
    expect(folder.announces(t.store.getLocal('f1', 'c.txt')!.record)).toBe(true);

    // The peer changes c.txt: still taken.
    remoteFile(files, 'c.txt', 'changed on the peer', version('c.txt'));
    await folder.settle();
    expect(read('c.txt')).toBe('changed on the peer');

    expect(await folder.revert()).toEqual(['a.txt', 'b.txt', 'own.txt', 'owndir', 'owndir/x.txt']);
    await folder.settle();
    expect([read('a.txt'), read('b.txt')]).toEqual(['from the peer', 'also from the peer']);
    expect(readdirSync(t.root).filter((n) => !n.startsWith('.ferry')).sort()).toEqual(['a.txt', 'b.txt', 'c.txt']);
    const kept = t.ctx.versioner.list().map((v) => readFileSync(join(t.root, v.stored), 'utf8')).sort();
    expect(kept).toEqual(['edited here', 'left alone', 'made here', 'made here too']); // 'left alone': replaced by the peer's change
    expect(folder.status()).toMatchObject({ notSent: 0, needFiles: 0, errors: [] });
    expect(t.store.getLocal('f1', 'a.txt')!.record.modifiedBy).toBe('REMOTE1');
    await folder.scanNow(); // nothing left over that a scan would take for a change
    expect(folder.status()).toMatchObject({ notSent: 0, needFiles: 0 });
  });
});
