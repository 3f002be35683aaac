import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAsOf, rewind } from './rewind.js';
import { Versioner } from './versioner.js';

let base: string;
let root: string;
let versioner: Versioner;

const t = (iso: string) => new Date(iso);
const WRITTEN = t('2026-12-01T10:00:00Z');
const AS_OF = Date.parse('2026-12-02T12:00:00Z');
const DAMAGED = t('2026-12-03T09:00:00Z');
const LATER = t('2026-12-03T10:00:00Z');
const REWOUND = t('2026-12-04T08:00:00Z');

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-rewind-'));
  root = join(base, 'root');
  mkdirSync(root);
  versioner = new Versioner(root, 30);
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function put(rel: string, text: string, mtime: Date): void {
  const abs = join(root, rel);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, text);
  utimesSync(abs, mtime, mtime);
}

/** What sync does to a file it replaces or deletes: into the version area, at `when`. */
function replacedBySync(rel: string, when: Date): void {
  versioner.archive(join(root, rel), rel, when);
}

const read = (rel: string) => readFileSync(join(root, rel), 'utf8');

/** Every file under the root, version area included, with its bytes. */
function snapshot(dir = root, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, snapshot(join(dir, e.name), r));
    else out[r] = readFileSync(join(dir, e.name), 'utf8');
  }
  return out;
}

/** A folder hit by a program that rewrote files after AS_OF, as a peer's sync brought it here. */
function damagedFolder(): void {
  put('docs/a.txt', 'one', WRITTEN);
  replacedBySync('docs/a.txt', DAMAGED);
  put('docs/a.txt', 'ONE, scrambled', DAMAGED);
  put('docs/b.txt', 'bee', WRITTEN);
  replacedBySync('docs/b.txt', DAMAGED); // deleted
  put('docs/c.txt', 'sea', WRITTEN); // untouched
  put('docs/d.txt', 'edited here', DAMAGED); // an edit made on this device: no version here
  put('e.txt', 'old', t('2026-11-30T10:00:00Z'));
  replacedBySync('e.txt', WRITTEN); // replaced before the moment: what is there now was there then
  put('e.txt', 'newer', WRITTEN);
  put('f.txt', 'born late', DAMAGED);
  replacedBySync('f.txt', LATER); // created and deleted after the moment: not there then
  put('g.txt', 'first', WRITTEN);
  replacedBySync('g.txt', DAMAGED);
  put('g.txt', 'second', DAMAGED);
  replacedBySync('g.txt', LATER);
  put('g.txt', 'third', LATER);
  put('h.txt', 'draft', t('2026-12-02T15:00:00Z')); // written after the moment, then replaced
  replacedBySync('h.txt', DAMAGED);
  put('h.txt', 'final', DAMAGED);
  put('i.txt', 'draft', t('2026-12-02T15:00:00Z'));
  replacedBySync('i.txt', DAMAGED);
  put('i.txt', 'an old copy', WRITTEN); // arrived after the moment with an older mtime
  writeFileSync(join(root, '.ferryignore'), '*.log\n');
  put('build.log', 'ignored', DAMAGED);
  put('.ferry.tmp.0123', 'a download', DAMAGED);
}

describe('rewind', () => {
  it('puts back what sync replaced or deleted since the moment, keeps what it replaces, and lists what it cannot rewind', async () => {
    damagedFolder();
    const result = await rewind(versioner, '', AS_OF, { now: REWOUND });
    expect(result).toMatchObject({ asOf: '2026-12-02T12:00:00.000Z', dryRun: false, changedSince: ['docs/d.txt', 'h.txt', 'i.txt'], unchanged: 2 });
    expect(result.restored.map((r) => [r.path, r.replacedAt])).toEqual([
      ['docs/a.txt', DAMAGED.toISOString()],
      ['docs/b.txt', DAMAGED.toISOString()],
      ['g.txt', DAMAGED.toISOString()],
    ]);
    expect([read('docs/a.txt'), read('docs/b.txt'), read('g.txt')]).toEqual(['one', 'bee', 'first']);
    expect([read('docs/c.txt'), read('docs/d.txt'), read('e.txt'), read('h.txt'), read('build.log')]).toEqual(['sea', 'edited here', 'newer', 'final', 'ignored']);
    expect(() => statSync(join(root, 'f.txt'))).toThrow(/ENOENT/);
    // A restored file is a new edit, and what it replaced is kept.
    expect(statSync(join(root, 'docs/a.txt')).mtimeMs).toBe(REWOUND.getTime());
    expect(readFileSync(join(root, result.restored[0]!.kept!), 'utf8')).toBe('ONE, scrambled');
    expect(result.restored[1]!.kept).toBeNull();
    expect(readFileSync(join(root, result.restored[2]!.kept!), 'utf8')).toBe('third');
  });

  it('with a dry run reports the same and changes nothing', async () => {
    damagedFolder();
    const before = snapshot();
    const result = await rewind(versioner, '', AS_OF, { dryRun: true, now: REWOUND });
    expect(result).toMatchObject({ dryRun: true, changedSince: ['docs/d.txt', 'h.txt', 'i.txt'], unchanged: 2 });
    expect(result.restored.map((r) => [r.path, r.kept])).toEqual([['docs/a.txt', null], ['docs/b.txt', null], ['g.txt', null]]);
    expect(snapshot()).toEqual(before);
  });

  it('done twice changes nothing more, and can itself be rewound', async () => {
    damagedFolder();
    await rewind(versioner, '', AS_OF, { now: REWOUND });
    const after = snapshot();
    const again = await rewind(versioner, '', AS_OF, { now: t('2026-12-05T08:00:00Z') });
    expect(again).toMatchObject({ restored: [], changedSince: ['docs/d.txt', 'h.txt', 'i.txt'], unchanged: 5 });
    expect(snapshot()).toEqual(after);

    // Back to just before the rewind: the scrambled and third versions return; b.txt was not
    // there then, so it is listed, not removed.
    const undo = await rewind(versioner, '', Date.parse('2026-12-04T07:00:00Z'), { now: t('2026-12-05T08:00:00Z') });
    expect(undo.restored.map((r) => r.path)).toEqual(['docs/a.txt', 'g.txt']);
    expect([read('docs/a.txt'), read('g.txt'), read('docs/b.txt')]).toEqual(['ONE, scrambled', 'third', 'bee']);
    expect(undo.changedSince).toEqual(['docs/b.txt']);
  });

  it('touches only the directory or file asked for', async () => {
    damagedFolder();
    const docs = await rewind(versioner, 'docs', AS_OF, { now: REWOUND });
    expect(docs.restored.map((r) => r.path)).toEqual(['docs/a.txt', 'docs/b.txt']);
    expect(docs.changedSince).toEqual(['docs/d.txt']);
    expect(read('g.txt')).toBe('third');
    const one = await rewind(versioner, 'g.txt', AS_OF, { now: REWOUND });
    expect(one.restored.map((r) => r.path)).toEqual(['g.txt']);
    expect(read('g.txt')).toBe('first');
    await expect(rewind(versioner, '../out', AS_OF)).rejects.toMatchObject({ code: 'INVALID_PATH' });
  });

  it('puts back what it can when one file cannot be (a directory in the way), and says why', async () => {
    damagedFolder();
    rmSync(join(root, 'docs/a.txt'));
    mkdirSync(join(root, 'docs/a.txt'));
    const result = await rewind(versioner, 'docs', AS_OF, { now: REWOUND });
    expect(result.restored.map((r) => r.path)).toEqual(['docs/b.txt']);
    expect(result.failed).toEqual([{ path: 'docs/a.txt', message: 'docs/a.txt is a directory now; move it away to restore the file' }]);
    expect(read('docs/b.txt')).toBe('bee');
    expect(statSync(join(root, 'docs/a.txt')).isDirectory()).toBe(true);
  });

  it('of a path with no versions and no file reports nothing to do', async () => {
    expect(await rewind(versioner, 'nothing/here', AS_OF)).toMatchObject({ restored: [], changedSince: [], unchanged: 0, failed: [] });
  });
});

describe('the moment to rewind to', () => {
  const now = Date.parse('2026-12-07T20:00:00Z');

  it('reads UTC times as `ferry versions` prints them, ISO times with offsets, and how long ago', () => {
    expect(parseAsOf('2026-12-07 18:13:48', now)).toBe(Date.parse('2026-12-07T18:13:48Z'));
    expect(parseAsOf('2026-12-07 18:13:48 UTC', now)).toBe(Date.parse('2026-12-07T18:13:48Z'));
    expect(parseAsOf('2026-12-07 18:13', now)).toBe(Date.parse('2026-12-07T18:13:00Z'));
    expect(parseAsOf('2026-12-07', now)).toBe(Date.parse('2026-12-07T00:00:00Z'));
    expect(parseAsOf('2026-12-07T18:13:48.250Z', now)).toBe(Date.parse('2026-12-07T18:13:48.250Z'));
    expect(parseAsOf('2026-12-07T19:13:48+01:00', now)).toBe(Date.parse('2026-12-07T18:13:48Z'));
    expect(parseAsOf('2026-12-07 13:13:48 -0500', now)).toBe(Date.parse('2026-12-07T18:13:48Z'));
    expect(parseAsOf('90m', now)).toBe(now - 90 * 60_000);
    expect(parseAsOf('2h', now)).toBe(now - 2 * 3_600_000);
    expect(parseAsOf('3d', now)).toBe(now - 3 * 86_400_000);
    expect(parseAsOf('1w', now)).toBe(now - 7 * 86_400_000);
  });

  it('refuses what is no time, no real date, or still to come', () => {
    for (const [text, why] of [
      ['yesterday', /not a time/],
      ['2h ago', /not a time/],
      ['2026-12-7', /not a time/],
      ['2026-02-30', /no such time/],
      ['2026-12-07 24:00:00', /no such time/],
      ['2026-12-08', /still to come/],
    ] as const) {
      expect(() => parseAsOf(text, now), text).toThrow(why);
      try {
        parseAsOf(text, now);
      } catch (err) {
        expect((err as { code: string }).code).toBe('INVALID_CONFIG');
      }
    }
  });
});
