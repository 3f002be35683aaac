/**
 * Watches a folder for changes (@parcel/watcher: inotify on Linux, recursive) and reports
 * batches of changed folder-relative paths, coalesced over a short quiet period so an editor's
 * save-rename-chmod sequence becomes one scan.
 */
import watcher from '@parcel/watcher';
import { relative, sep } from 'node:path';
import type { Logger } from './folder-context.js';

const QUIET_MS = 25;
const MAX_DELAY_MS = 200;

export class FolderWatcher {
  private subscription?: watcher.AsyncSubscription;
  private pending = new Set<string>();
  private timer?: NodeJS.Timeout;
  private firstAt = 0;

  private constructor(
    private readonly root: string,
    private readonly onChange: (paths: string[]) => void,
    private readonly logger: Logger,
  ) {}

  static async start(root: string, onChange: (paths: string[]) => void, logger: Logger): Promise<FolderWatcher> {
    const w = new FolderWatcher(root, onChange, logger);
    w.subscription = await watcher.subscribe(root, (err, events) => w.handle(err, events), {
      ignore: ['.ferry-versions'],
    });
    return w;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.subscription?.unsubscribe();
  }

  private handle(err: Error | null, events: watcher.Event[]): void {
    if (err) {
      this.logger.warn({ err: err.message, root: this.root }, 'file watcher error; the periodic rescan still runs');
      return;
    }
    for (const e of events) {
      const rel = relative(this.root, e.path).split(sep).join('/');
      if (rel === '' || rel.startsWith('..')) continue;
      if (rel.split('/').some((part) => part.startsWith('.ferry') && part !== '.ferryignore')) continue;
      this.pending.add(rel);
    }
    if (this.pending.size === 0) return;
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
    if (paths.length) this.onChange(paths);
  }
}
