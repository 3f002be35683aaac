import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderWatcher } from './watcher.js';
import { RecordingLogger } from './test-support.js';

// Directories whose watch fails as at the system's limit of watches (ENOSPC).
const overLimit = vi.hoisted(() => ({ suffix: undefined as string | undefined }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const watch = ((path: string, ...rest: unknown[]) => {
    if (overLimit.suffix && String(path).endsWith(overLimit.suffix)) {
      throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${path}'`), { code: 'ENOSPC' });
    }
    return (fs.watch as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.watch;
  return { ...fs, default: { ...fs, watch }, watch };
});

let base: string;
let root: string;
let reported: string[];
let watcher: FolderWatcher;
let logger: RecordingLogger;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the watcher has reported `path` (or gives up after 3 s). */
async function reportedSoon(path: string): Promise<boolean> {
  for (let i = 0; i < 60; i++) {
    if (reported.includes(path)) return true;
    await sleep(50);
  }
  return false;
}

/** Lets the watcher settle after a change, then forgets what it reported so far. */
async function settled(): Promise<void> {
  await sleep(400);
  reported = [];
}

beforeEach(async () => {
  base = mkdtempSync(join(tmpdir(), 'ferry-watch-'));
  root = join(base, 'folder');
  mkdirSync(join(root, 'a/sub'), { recursive: true });
  reported = [];
  logger = new RecordingLogger();
  watcher = await FolderWatcher.start(root, (paths) => reported.push(...paths), logger);
});

afterEach(async () => {
  await watcher.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('FolderWatcher', () => {
  it('reports files made, changed and deleted, by folder-relative path', async () => {
    writeFileSync(join(root, 'a/sub/f.txt'), 'one');
    expect(await reportedSoon('a/sub/f.txt')).toBe(true);
    await settled();
    writeFileSync(join(root, 'a/sub/f.txt'), 'two');
    expect(await reportedSoon('a/sub/f.txt')).toBe(true);
    await settled();
    rmSync(join(root, 'a/sub/f.txt'));
    expect(await reportedSoon('a/sub/f.txt')).toBe(true);
  });

  it('watches every directory of a tree made in one go (mkdir -p, a pull, an unpacked archive)', async () => {
    mkdirSync(join(root, 'n/m/k'), { recursive: true });
    expect(await reportedSoon('n')).toBe(true);
    await settled();
    writeFileSync(join(root, 'n/m/k/deep.txt'), 'x');
    writeFileSync(join(root, 'n/m/mid.txt'), 'x');
    expect(await reportedSoon('n/m/k/deep.txt')).toBe(true);
    expect(await reportedSoon('n/m/mid.txt')).toBe(true);
  });

  it('watches many directories made at once in one parent, among files (found by listing the parent)', async () => {
    const dirs = Array.from({ length: 12 }, (_, i) => `a/many${i}`);
    for (const [i, d] of dirs.entries()) {
      mkdirSync(join(root, d));
      writeFileSync(join(root, `a/file${i}.txt`), 'x');
    }
    expect(await reportedSoon('a/many11')).toBe(true);
    await settled();
    for (const d of dirs) writeFileSync(join(root, d, 'inside.txt'), 'x');
    for (const d of dirs) expect(await reportedSoon(`${d}/inside.txt`)).toBe(true);
  });

  it('reports what is under a renamed directory by its new path, not its old one', async () => {
    renameSync(join(root, 'a'), join(root, 'b'));
    expect(await reportedSoon('b')).toBe(true);
    await settled();
    writeFileSync(join(root, 'b/sub/f.txt'), 'x');
    expect(await reportedSoon('b/sub/f.txt')).toBe(true);
    expect(reported.filter((p) => p.startsWith('a/'))).toEqual([]);
  });

  it('watches a directory deleted and made again at once, with a new tree inside', async () => {
    rmSync(join(root, 'a'), { recursive: true });
    mkdirSync(join(root, 'a/sub/deeper'), { recursive: true });
    expect(await reportedSoon('a')).toBe(true);
    await settled();
    writeFileSync(join(root, 'a/sub/deeper/f.txt'), 'x');
    expect(await reportedSoon('a/sub/deeper/f.txt')).toBe(true);
  });

  it('reports a directory again once everything in it is watched, so files made meanwhile are scanned', async () => {
    mkdirSync(join(root, 'quick/inner'), { recursive: true });
    writeFileSync(join(root, 'quick/inner/early.txt'), 'x');
    expect(await reportedSoon('quick')).toBe(true);
    await sleep(300);
    // The scan of the first report may have run before `quick/inner` was watched; a second
    // report of `quick` comes after it is.
    expect(reported.filter((p) => p === 'quick').length).toBeGreaterThanOrEqual(2);
  });

  it("ignores Ferry's own files and does not follow a symlink out of the folder", async () => {
    mkdirSync(join(base, 'outside'));
    symlinkSync(join(base, 'outside'), join(root, 'link'));
    mkdirSync(join(root, '.ferry-versions/a'), { recursive: true });
    expect(await reportedSoon('link')).toBe(true);
    await settled();
    writeFileSync(join(base, 'outside/f.txt'), 'x');
    writeFileSync(join(root, '.ferry-versions/a/old.txt'), 'x');
    writeFileSync(join(root, 'a/.ferry.tmp.123'), 'x');
    writeFileSync(join(root, 'a/seen.txt'), 'x');
    expect(await reportedSoon('a/seen.txt')).toBe(true);
    expect(reported).toEqual(['a/seen.txt']);
  });

  it('at the system limit of watches, says so once and goes on watching the rest', async () => {
    await watcher.stop();
    overLimit.suffix = '/sub';
    mkdirSync(join(root, 'b/sub'), { recursive: true });
    try {
      watcher = await FolderWatcher.start(root, (paths) => reported.push(...paths), logger);
      const warnings = logger.lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/system limit of watched directories.*max_user_watches/);
      writeFileSync(join(root, 'a/watched.txt'), 'x');
      expect(await reportedSoon('a/watched.txt')).toBe(true);
    } finally {
      overLimit.suffix = undefined;
    }
  });

  it('reports nothing once stopped', async () => {
    await watcher.stop();
    writeFileSync(join(root, 'late.txt'), 'x');
    await sleep(300);
    expect(reported).toEqual([]);
  });
});
