import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LocalEntry } from '../index-store/sqlite-index-store.js';
import { OwnWrites } from './own-writes.js';
import { statKey } from './scanner.js';
import { fileRecord } from './test-support.js';

const OLD_S = 1_650_000_000; // well before "now": not racy

let root: string;
let own: OwnWrites;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-own-'));
  own = new OwnWrites(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Writes a file as a pull would (old mtime) and returns the entry the pull commits. */
function pulledFile(rel: string, content = 'data', mtimeS = OLD_S): LocalEntry {
  const abs = join(root, rel);
  writeFileSync(abs, content);
  utimesSync(abs, mtimeS, mtimeS);
  return { record: fileRecord(rel, { size: content.length, mtimeMs: mtimeS * 1000 }), stat: statKey(lstatSync(abs)), scannedAtMs: Date.now(), chunkAvg: 0 };
}

function pulledDir(rel: string): LocalEntry {
  mkdirSync(join(root, rel));
  chmodSync(join(root, rel), 0o755);
  return { record: fileRecord(rel, { type: 'dir', mode: 0o755, size: 0 }), stat: statKey(lstatSync(join(root, rel))), scannedAtMs: Date.now(), chunkAvg: 0 };
}

describe('the echo of what a pull wrote', () => {
  it('a file that still looks as written is not reported; one edited, replaced or removed is', () => {
    for (const name of ['same', 'edited', 'gone', 'replaced']) own.record(pulledFile(name), 1);
    writeFileSync(join(root, 'edited'), 'DATA'); // same size, new mtime
    rmSync(join(root, 'gone'));
    rmSync(join(root, 'replaced'));
    writeFileSync(join(root, 'replaced'), 'data');
    expect(own.changed(['same', 'edited', 'gone', 'replaced', 'other'])).toEqual(['edited', 'gone', 'replaced', 'other']);
  });

  it('a file whose timestamps are too recent for its stat to prove its content is reported', () => {
    own.record(pulledFile('fresh', 'data', Math.floor(Date.now() / 1000)), 1);
    expect(own.changed(['fresh'])).toEqual(['fresh']);
  });

  it('a deletion is an echo only while the path stays absent', () => {
    const deleted = { record: fileRecord('d', { deleted: true }), scannedAtMs: Date.now(), chunkAvg: 0 };
    own.record(deleted, 1);
    expect(own.changed(['d'])).toEqual([]);
    writeFileSync(join(root, 'd'), 'back');
    expect(own.changed(['d'])).toEqual(['d']);
  });

  it('a directory is an echo while it holds only what the pull wrote and temporary files, with its mode', () => {
    own.record(pulledDir('dir'), 1);
    own.record(pulledFile('dir/a'), 1);
    writeFileSync(join(root, 'dir', '.ferry.tmp.0123456789abcdef'), 'partial');
    expect(own.changed(['dir'])).toEqual([]);
    writeFileSync(join(root, 'dir', '.ferryignore'), '*.log'); // the user's, not Ferry's
    expect(own.changed(['dir'])).toEqual(['dir']);
    rmSync(join(root, 'dir', '.ferryignore'));
    writeFileSync(join(root, 'dir', 'users-file'), 'x');
    expect(own.changed(['dir'])).toEqual(['dir']);
    rmSync(join(root, 'dir', 'users-file'));
    chmodSync(join(root, 'dir'), 0o700);
    expect(own.changed(['dir'])).toEqual(['dir']);
  });

  it('forgets the writes of finished rounds: their paths are reported again', () => {
    own.record(pulledFile('one'), 1);
    own.record(pulledFile('two'), 2);
    own.forget(1);
    expect(own.changed(['one', 'two'])).toEqual(['one']);
  });
});

describe('counting what a pull did not write', () => {
  it('counts the reported paths no remembered pull wrote, edited or not, and all of them once forgotten', () => {
    own.record(pulledFile('a'), 1);
    own.record(pulledFile('b', 'data', Date.now() / 1000), 1); // racy: reported again, yet the pull's own
    expect(own.notWritten(['a', 'b', 'c', 'd'])).toBe(2);
    own.forget(1);
    expect(own.notWritten(['a', 'b', 'c', 'd'])).toBe(4);
  });
});
