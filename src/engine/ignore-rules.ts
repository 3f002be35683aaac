/**
 * Which paths a folder does not sync: Ferry's own `.ferry*` files, common OS and editor
 * scratch files, and the user's `.ferryignore` (gitignore syntax, read from the folder root).
 */
import ignore, { type Ignore } from 'ignore';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const IGNORE_FILE = '.ferryignore';

/**
 * Names no user wants synced, at any depth: OS metadata and editors' swap and lock files
 * (`.DS_Store`, `Thumbs.db`, `desktop.ini`, `*.swp`, `*.swx`, `.~lock.*#`, `~$*`), and Ferry's
 * own names (`.ferry*`, see `isInternalPath`). A plain expression on each name: a rescan asks
 * about every entry.
 */
const BUILT_IN_NAME = /^(?:\.DS_Store|Thumbs\.db|desktop\.ini|.*\.sw[px]|\.~lock\..*#|~\$.*|\.ferry.*)$/s;

export class IgnoreRules {
  private constructor(private readonly userRules: Ignore | undefined) {}

  static load(root: string): IgnoreRules {
    let text: string;
    try {
      text = readFileSync(join(root, IGNORE_FILE), 'utf8');
    } catch {
      return new IgnoreRules(undefined); // no .ferryignore: only the built-in rules apply
    }
    return new IgnoreRules(ignore().add(text));
  }

  /** `isDir` lets patterns like `build/` match the directory itself. */
  ignores(path: string, isDir = false): boolean {
    for (let start = 0; start <= path.length; ) {
      let end = path.indexOf('/', start);
      if (end < 0) end = path.length;
      if (BUILT_IN_NAME.test(path.slice(start, end))) return true;
      start = end + 1;
    }
    return this.userRules?.ignores(isDir ? path + '/' : path) ?? false;
  }
}
