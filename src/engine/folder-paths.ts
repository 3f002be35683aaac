/**
 * Turns folder-relative paths into absolute ones without ever leaving the folder: every
 * parent directory on the way must be a real directory, never a symlink, so a peer cannot
 * make Ferry write through a link to somewhere else. Missing parents can be created.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../core/errors.js';
import { checkRelativePath } from '../core/paths.js';

export class FolderPaths {
  /** Parent directories verified in the current pass (cleared by `forget`). */
  private readonly verified = new Set<string>();

  constructor(readonly root: string) {}

  /** Absolute path for `rel` after checking its parents; creates missing parents if asked. */
  resolve(rel: string, options: { createParents?: boolean } = {}): string {
    const path = checkRelativePath(rel);
    const parts = path.split('/');
    let dir = '';
    for (let i = 0; i < parts.length - 1; i++) {
      dir = dir ? `${dir}/${parts[i]}` : parts[i]!;
      if (this.verified.has(dir)) continue;
      const abs = join(this.root, dir);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        if (!options.createParents) throw new FerryError('NOT_FOUND', `parent directory ${dir} does not exist`);
        mkdirSync(abs);
      } else if (!st.isDirectory()) {
        throw new FerryError('INVALID_PATH', `${path}: parent ${dir} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`, {
          data: { path },
        });
      }
      this.verified.add(dir);
    }
    return join(this.root, path);
  }

  /** Drops cached checks, e.g. after a directory was removed or replaced. */
  forget(): void {
    this.verified.clear();
  }
}
