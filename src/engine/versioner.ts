/**
 * The version area: replaced and deleted files are moved to `.ferry-versions/` inside the
 * folder, under their own relative path with a time stamp (`a/b.txt` becomes
 * `.ferry-versions/a/b~20261121-143005.txt`), and removed after the retention period.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const VERSIONS_DIR = '.ferry-versions';

export class Versioner {
  constructor(
    private readonly root: string,
    private readonly keepDays: number,
  ) {}

  /** Moves the file at absolute `abs` (folder path `rel`) into the version area. */
  archive(abs: string, rel: string, now = new Date()): string {
    const target = this.uniqueTarget(rel, now);
    mkdirSync(dirname(target), { recursive: true });
    renameSync(abs, target);
    return target;
  }

  /** Deletes versions older than the retention period; returns how many were removed. */
  prune(now = Date.now()): number {
    const cutoff = now - this.keepDays * 86_400_000;
    return this.pruneDir(join(this.root, VERSIONS_DIR), cutoff);
  }

  private pruneDir(dir: string, cutoff: number): number {
    let removed = 0;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return 0;
    }
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) {
        removed += this.pruneDir(abs, cutoff);
        try {
          rmdirSync(abs);
        } catch {
          // not empty: keep it
        }
        continue;
      }
      const stamp = parseStamp(e.name);
      if (stamp !== undefined && stamp < cutoff) {
        rmSync(abs, { force: true });
        removed++;
      }
    }
    return removed;
  }

  private uniqueTarget(rel: string, now: Date): string {
    const stamp = formatStamp(now);
    const slash = rel.lastIndexOf('/');
    const name = rel.slice(slash + 1);
    const dot = name.lastIndexOf('.');
    const stem = dot > 0 ? name.slice(0, dot) : name;
    const ext = dot > 0 ? name.slice(dot) : '';
    const dir = join(this.root, VERSIONS_DIR, rel.slice(0, slash + 1));
    for (let n = 0; ; n++) {
      const candidate = join(dir, `${stem}~${stamp}${n ? `-${n}` : ''}${ext}`);
      if (!lstatSync(candidate, { throwIfNoEntry: false })) return candidate;
    }
  }
}

function formatStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

function parseStamp(name: string): number | undefined {
  const m = /~(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(name);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}
