/**
 * Watches a folder for changes and reports batches of changed folder-relative paths, coalesced
 * over a short quiet period so an editor's save-rename-chmod sequence becomes one scan.
 *
 * One non-recursive `fs.watch` (inotify on Linux) per directory, set before the directory is
 * listed: whatever appears in it after the listing raises an event, whatever was there before
 * is found by the listing. A name that appears or goes away (a "rename" event) is looked at:
 * a new directory is watched with everything under it and then reported again, so that a scan
 * runs once its whole tree is watched; a watched directory that went away or was replaced has
 * the watches under it dropped. (@parcel/watcher, used before, never watched a directory made
 * inside a new directory before its own watch was set, as `mkdir -p`, a pull or an unpacked
 * archive do, and went on reporting the subdirectories of a renamed directory under their old
 * paths: changes there waited for the periodic rescan.)
 */
import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from './folder-context.js';
import { errorMessage } from '../core/errors.js';

const QUIET_MS = 25;
const MAX_DELAY_MS = 200;
/** Directories listed at once while a tree is being watched. */
const LIST_CONCURRENCY = 32;
/** A directory with this many names to check is listed instead (see directoriesAmong). */
const LIST_RATHER_THAN_STAT = 8;

interface WatchedDir {
  readonly handle: FSWatcher;
  /** Names of the watched directories directly inside it. */
  readonly children: Set<string>;
}

/** Ferry's own names (temporary files, the version area, markers) are not the user's changes. */
function isOwnName(name: string): boolean {
  return name.startsWith('.ferry') && name !== '.ferryignore';
}

function childPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

function parentAndName(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? ['', path] : [path.slice(0, slash), path.slice(slash + 1)];
}

export class FolderWatcher {
  private readonly dirs = new Map<string, WatchedDir>();
  private pending = new Set<string>();
  /** Names that appeared or went away since the last flush: directories to watch or to drop. */
  private renamed = new Set<string>();
  /** Looking at renamed names runs one batch at a time, in order. */
  private checking: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private firstAt = 0;
  private stopped = false;
  private limitWarned = false;

  private constructor(
    private readonly root: string,
    private readonly onChange: (paths: string[]) => void,
    private readonly logger: Logger,
  ) {}

  /** Watches `root` and every directory under it; fails if `root` itself cannot be watched. */
  static async start(root: string, onChange: (paths: string[]) => void, logger: Logger): Promise<FolderWatcher> {
    const w = new FolderWatcher(root, onChange, logger);
    w.dirs.set('', { handle: w.open('', true)!, children: new Set() });
    await w.watchUnder(['']);
    return w;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const dir of this.dirs.values()) dir.handle.close();
    this.dirs.clear();
    await this.checking;
  }

  /** Opens a watch on one directory; undefined (and nothing changed) when it cannot be. */
  private open(dir: string, mustWork = false): FSWatcher | undefined {
    try {
      const handle = watch(join(this.root, dir), { persistent: false }, (type, name) => this.event(dir, type, name));
      // A watched directory that goes away may end its watch with an error (EPERM on Windows).
      handle.on('error', () => this.markRenamed(dir));
      return handle;
    } catch (err) {
      if (mustWork) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' && !this.limitWarned) {
        this.limitWarned = true;
        this.logger.warn(
          { err: errorMessage(err), root: this.root },
          'the system limit of watched directories is reached; changes in the rest are found by the periodic rescan (raise fs.inotify.max_user_watches)',
        );
      }
      return undefined; // gone again, or not a directory any more: its parent's event covers it
    }
  }

  /** Lists the given watched directories and watches every directory under them. */
  private async watchUnder(dirs: string[]): Promise<void> {
    let level = dirs;
    while (level.length && !this.stopped) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += LIST_CONCURRENCY) {
        await Promise.all(level.slice(i, i + LIST_CONCURRENCY).map(async (dir) => {
          let entries;
          try {
            entries = await readdir(join(this.root, dir), { withFileTypes: true });
          } catch {
            return; // gone meanwhile: its parent's event drops it
          }
          for (const e of entries) {
            if (e.isDirectory() && !isOwnName(e.name)) {
              const path = childPath(dir, e.name);
              if (this.add(path)) next.push(path);
            }
          }
        }));
      }
      level = next;
    }
  }

  /** Watches one directory whose parent is watched; false when it is watched already or cannot be. */
  private add(path: string): boolean {
    if (this.stopped || this.dirs.has(path)) return false;
    const [parent, name] = parentAndName(path);
    const parentDir = this.dirs.get(parent);
    if (!parentDir) return false;
    const handle = this.open(path);
    if (!handle) return false;
    this.dirs.set(path, { handle, children: new Set() });
    parentDir.children.add(name);
    return true;
  }

  /** Drops the watches of a directory and of everything under it. */
  private drop(path: string): void {
    const dir = this.dirs.get(path);
    if (!dir) return;
    for (const name of dir.children) this.drop(childPath(path, name));
    dir.handle.close();
    this.dirs.delete(path);
    const [parent, name] = parentAndName(path);
    this.dirs.get(parent)?.children.delete(name);
  }

  private event(dir: string, type: string, name: string | Buffer | null): void {
    if (this.stopped) return;
    if (name === null) {
      this.report(dir); // the platform did not say what changed: scan the whole directory
      return;
    }
    const path = childPath(dir, name.toString());
    if (path.split('/').some(isOwnName)) return;
    if (type === 'rename') this.renamed.add(path);
    this.report(path);
  }

  private markRenamed(dir: string): void {
    if (this.stopped || dir === '') return;
    this.renamed.add(dir);
    this.report(dir);
  }

  private report(path: string): void {
    this.pending.add(path);
    const now = Date.now();
    if (!this.timer) this.firstAt = now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(QUIET_MS, this.firstAt + MAX_DELAY_MS - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = undefined;
    const paths = [...this.pending];
    this.pending.clear();
    const renamed = [...this.renamed];
    this.renamed.clear();
    if (paths.length && !this.stopped) this.onChange(paths);
    if (renamed.length) {
      this.checking = this.checking
        .then(() => this.checkRenamed(renamed))
        .catch((err) => this.logger.warn({ err: errorMessage(err), root: this.root }, 'file watcher error; the periodic rescan still runs'));
    }
  }

  /**
   * Which of `paths` are directories now. The names of a directory with many of them are looked
   * up in one listing of it instead of one `lstat` each: a pull of 10,000 files renames 100 into
   * each of 100 directories.
   */
  private async directoriesAmong(paths: string[]): Promise<Set<string>> {
    const byParent = new Map<string, string[]>();
    for (const path of paths) {
      const [parent, name] = parentAndName(path);
      const names = byParent.get(parent);
      if (names) names.push(name);
      else byParent.set(parent, [name]);
    }
    const dirs = new Set<string>();
    const isDir = (path: string) => lstat(join(this.root, path)).then((s) => s.isDirectory(), () => false);
    await Promise.all([...byParent].map(async ([parent, names]) => {
      if (names.length < LIST_RATHER_THAN_STAT) {
        await Promise.all(names.map(async (name) => {
          const path = childPath(parent, name);
          if (await isDir(path)) dirs.add(path);
        }));
        return;
      }
      const wanted = new Set(names);
      const entries = await readdir(join(this.root, parent), { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory() && wanted.has(e.name)) dirs.add(childPath(parent, e.name));
    }));
    return dirs;
  }

  /**
   * Names that appeared or went away: a watched directory among them was moved, deleted or
   * replaced, so its watches go (a moved directory's watches would go on reporting its old
   * paths); a directory there now is watched with its whole tree and reported again.
   */
  private async checkRenamed(paths: string[]): Promise<void> {
    const dirs = await this.directoriesAmong(paths);
    const added: string[] = [];
    for (const path of paths) {
      if (this.stopped) return;
      this.drop(path);
      if (dirs.has(path) && this.add(path)) added.push(path);
    }
    if (!added.length) return;
    await this.watchUnder(added);
    for (const path of added) this.report(path);
  }
}
