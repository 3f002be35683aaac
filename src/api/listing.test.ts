import { describe, expect, it } from 'vitest';
import { matchesFilter, typeMatcher, type ListedEntry } from './listing.js';
import { parseTime } from './time-filter.js';

const entry = (path: string, type: ListedEntry['type'] = 'file', mtimeMs = 1000): ListedEntry => ({ path, name: path.slice(path.lastIndexOf('/') + 1), type, size: 1, mtimeMs });

describe('listing filters', () => {
  it('matches extensions case-insensitively and globs on the name', () => {
    const txt = typeMatcher('txt');
    expect([txt('a.txt'), txt('A.TXT'), txt('a.txt.bak'), txt('.txt')]).toEqual([true, true, false, false]);
    expect(typeMatcher('.md')('notes.md')).toBe(true);
    const jpg = typeMatcher('*.jp*g');
    expect([jpg('x.jpg'), jpg('x.jpeg'), jpg('x.png')]).toEqual([true, true, false]);
    expect(typeMatcher('report-??.pdf')('report-07.pdf')).toBe(true);
    expect(typeMatcher('[ab]*')('bcd')).toBe(true);
    expect(() => typeMatcher('a/b')).toThrow(/invalid type filter/);
  });

  it('keeps direct children unless recursive, and filters by time and type', () => {
    const f = { recursive: false };
    expect(matchesFilter(entry('d/a.txt'), 'd', f)).toBe(true);
    expect(matchesFilter(entry('d/e/a.txt'), 'd', f)).toBe(false);
    expect(matchesFilter(entry('d/e/a.txt'), 'd', { recursive: true })).toBe(true);
    expect(matchesFilter(entry('a.txt'), '', f)).toBe(true);
    const timed = { recursive: true, sinceMs: 1000, untilMs: 2000 };
    expect([999, 1000, 1999, 2000].map((t) => matchesFilter(entry('a', 'file', t), '', timed))).toEqual([false, true, true, false]);
    const m = typeMatcher('txt');
    expect(matchesFilter(entry('x.txt', 'dir'), '', { recursive: true }, m)).toBe(false);
  });

  it('parses ISO dates, epoch milliseconds and durations', () => {
    const now = Date.parse('2026-11-21T12:00:00Z');
    expect(parseTime('2026-11-21', 'since', now)).toBe(Date.parse('2026-11-21'));
    expect(parseTime('2026-11-21T08:00:00Z', 'since', now)).toBe(Date.parse('2026-11-21T08:00:00Z'));
    expect(parseTime('1795251719097', 'since', now)).toBe(1795251719097);
    expect(parseTime('2h', 'since', now)).toBe(now - 7_200_000);
    expect(parseTime('7d', 'since', now)).toBe(now - 7 * 86_400_000);
    expect(() => parseTime('yesterday', 'since', now)).toThrow(/not a time/);
  });
});
