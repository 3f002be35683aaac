import { describe, expect, it } from 'vitest';
import { readable } from './logger.js';

describe('readable log lines', () => {
  it('shows time, level, message and the other fields, quoting values with spaces', () => {
    const time = new Date(2026, 10, 21, 9, 5, 7).getTime();
    const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', node: 'laptop', path: 'my notes.txt', offset: 100, peer: 'ABCDEFG', msg: 'received a block that fails its hash; discarded' });
    expect(readable(line)).toBe('09:05:07 WARN  received a block that fails its hash; discarded path="my notes.txt" offset=100 peer=ABCDEFG\n');
    expect(readable(JSON.stringify({ level: 30, time, msg: 'folder started', folder: 'docs' }))).toBe('09:05:07 INFO  folder started folder=docs\n');
  });

  it('passes through what is not a JSON line', () => {
    expect(readable('not json\n')).toBe('not json\n');
  });
});
