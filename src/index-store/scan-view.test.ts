import { describe, expect, it } from 'vitest';
import { ScanView } from './scan-view.js';
import type { ScanEntry } from './sqlite-index-store.js';

const file = (path: string, i: number): ScanEntry => ({
  record: { path, type: 'file', deleted: false, mode: 0o644 },
  stat: { size: i * 1000 + 7, mtimeMs: 1_700_000_000_123.25 + i, ctimeMs: 1_700_000_000_456.5 + i, ino: 2 ** 40 + i },
  scannedAtMs: 1_700_000_001_000 + i,
  chunkAvg: 131072,
});

describe('ScanView', () => {
  it('gives back every field as stored, for thousands of entries (growing its columns)', () => {
    const view = new ScanView();
    for (let i = 0; i < 5000; i++) view.set(`d/f${i}`, file(`d/f${i}`, i));
    view.set('ln', { record: { path: 'ln', type: 'symlink', deleted: false, mode: 0, symlinkTarget: '../x' }, stat: undefined, scannedAtMs: 5, chunkAvg: 0 });
    view.set('gone', { record: { path: 'gone', type: 'dir', deleted: true, mode: 0o755 }, stat: undefined, scannedAtMs: 6, chunkAvg: 0 });
    expect(view.size).toBe(5002);
    for (const i of [0, 1023, 1024, 4999]) expect(view.get(`d/f${i}`)).toEqual(file(`d/f${i}`, i));
    expect(view.get('ln')).toEqual({ record: { path: 'ln', type: 'symlink', deleted: false, mode: 0, symlinkTarget: '../x' }, stat: undefined, scannedAtMs: 5, chunkAvg: 0 });
    expect(view.get('gone')).toEqual({ record: { path: 'gone', type: 'dir', deleted: true, mode: 0o755 }, stat: undefined, scannedAtMs: 6, chunkAvg: 0 });
    expect(view.get('nope')).toBeUndefined();
    expect([...view.keys()].slice(-2)).toEqual(['ln', 'gone']);
  });

  it('overwrites an entry in place, clears a symlink target, and changes only the stat with setStat', () => {
    const view = new ScanView();
    view.set('p', { record: { path: 'p', type: 'symlink', deleted: false, mode: 0, symlinkTarget: 't' }, stat: undefined, scannedAtMs: 1, chunkAvg: 0 });
    view.set('p', file('p', 3));
    expect(view.get('p')).toEqual(file('p', 3));
    expect(view.size).toBe(1);
    view.setStat('p', { size: 1, mtimeMs: 2, ctimeMs: 3, ino: 4 }, 99);
    expect(view.get('p')).toEqual({ ...file('p', 3), stat: { size: 1, mtimeMs: 2, ctimeMs: 3, ino: 4 }, scannedAtMs: 99 });
    view.setStat('absent', { size: 1, mtimeMs: 2, ctimeMs: 3, ino: 4 }, 99);
    expect(view.get('absent')).toBeUndefined();
  });

  it('answers the rescan\'s questions without building entries: same file and stat, deleted, slot', () => {
    const view = new ScanView();
    const f = file('a', 1);
    view.set('a', f);
    view.set('no-stat', { ...file('no-stat', 2), stat: undefined });
    view.set('gone', { ...file('gone', 3), record: { ...file('gone', 3).record, deleted: true } });
    view.set('d', { record: { path: 'd', type: 'dir', deleted: false, mode: 0o755 }, stat: f.stat, scannedAtMs: 9, chunkAvg: 0 });
    expect(view.sameFileScannedAt('a', { ...f.stat! })).toBe(f.scannedAtMs);
    for (const key of ['size', 'mtimeMs', 'ctimeMs', 'ino'] as const) {
      expect(view.sameFileScannedAt('a', { ...f.stat!, [key]: f.stat![key] + 1 })).toBeUndefined();
    }
    expect(view.sameFileScannedAt('no-stat', f.stat!)).toBeUndefined();
    expect(view.sameFileScannedAt('gone', file('gone', 3).stat!)).toBeUndefined();
    expect(view.sameFileScannedAt('d', f.stat!)).toBeUndefined(); // a directory, not a file
    expect(view.sameFileScannedAt('absent', f.stat!)).toBeUndefined();
    expect([view.isDeleted('gone'), view.isDeleted('a'), view.isDeleted('absent')]).toEqual([true, false, false]);
    expect([view.slotOf('a'), view.slotOf('d'), view.slotOf('absent')]).toEqual([0, 3, undefined]);
    view.set('a', file('a', 5)); // overwritten in place: same slot
    expect(view.slotOf('a')).toBe(0);
  });
});
