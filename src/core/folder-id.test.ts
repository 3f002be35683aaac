import { describe, expect, it } from 'vitest';
import { isFerryError } from './errors.js';
import { checkFolderId, isFolderId } from './folder-id.js';

describe('folder IDs', () => {
  it('are letters, digits, dot, underscore and dash, starting with a letter or digit, at most 64', () => {
    for (const ok of ['docs', 'Photos-2026', 'a.b_c', '0', 'x'.repeat(64)]) expect(isFolderId(ok), ok).toBe(true);
    for (const bad of ['', '.hidden', '-x', '../etc', 'a/b', 'a b', 'ä', 'x'.repeat(65), 'a\u0000']) expect(isFolderId(bad), bad).toBe(false);
  });

  it('a bad one is INVALID_CONFIG naming it', () => {
    expect(checkFolderId('docs')).toBe('docs');
    let error: unknown;
    try {
      checkFolderId('../etc');
    } catch (err) {
      error = err;
    }
    expect(isFerryError(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('"../etc"');
  });
});
