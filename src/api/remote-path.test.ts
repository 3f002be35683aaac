import { describe, expect, it } from 'vitest';
import { encodeRemotePath, parseRemotePath } from './remote-path.js';

describe('remote paths', () => {
  it('splits FOLDER/path and normalizes to NFC', () => {
    expect(parseRemotePath('docs/a/b.txt')).toEqual({ folder: 'docs', path: 'a/b.txt' });
    expect(parseRemotePath('docs', { allowRoot: true })).toEqual({ folder: 'docs', path: '' });
    expect(parseRemotePath('docs/dir/', { allowRoot: true })).toEqual({ folder: 'docs', path: 'dir' });
    expect(parseRemotePath('docs/cafe\u0301').path).toBe('caf\u00e9');
  });

  it('refuses traversal, absolute paths, NUL, reserved names and bad folder IDs', () => {
    for (const bad of ['docs/../x', 'docs/a/../../x', 'docs//etc/passwd', 'docs/a\0b', 'docs/.ferry-versions/x', 'docs/a/.ferry.tmp.1', '../docs/x', '/docs/x', 'docs/a\\b', 'docs']) {
      expect(() => parseRemotePath(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_PATH', status: 400 }));
    }
  });

  it('encodes each segment for a URL', () => {
    expect(encodeRemotePath('docs', 'a b/c#d?.txt')).toBe('docs/a%20b/c%23d%3F.txt');
  });
});
