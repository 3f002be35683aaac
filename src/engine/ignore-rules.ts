/**
 * Which paths a folder does not sync: Ferry's own `.ferry*` files, common OS and editor
 * scratch files, and the user's `.ferryignore` (gitignore syntax, read from the folder root).
 */
import ignore, { type Ignore } from 'ignore';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInternalPath } from '../core/paths.js';

export const IGNORE_FILE = '.ferryignore';

/** Files no user wants synced: OS metadata and editors' swap and lock files. */
const BUILT_IN = ['.DS_Store', 'Thumbs.db', 'desktop.ini', '*.swp', '*.swx', '.~lock.*#', '~$*'];

export class IgnoreRules {
  private constructor(private readonly matcher: Ignore) {}

  static load(root: string): IgnoreRules {
    const matcher = ignore().add(BUILT_IN);
    try {
      matcher.add(readFileSync(join(root, IGNORE_FILE), 'utf8'));
    } catch {
      // no .ferryignore: only the built-in rules apply
    }
    return new IgnoreRules(matcher);
  }

  /** `isDir` lets patterns like `build/` match the directory itself. */
  ignores(path: string, isDir = false): boolean {
    if (isInternalPath(path)) return true;
    return this.matcher.ignores(isDir ? path + '/' : path);
  }
}
