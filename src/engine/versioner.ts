/**
 * The version area: replaced and deleted files are moved to `.ferry-versions/` inside the
 * folder, under their own relative path with a time stamp (UTC; `a/b.txt` becomes
 * `.ferry-versions/a/b~20261121-143005.txt`), and removed after the retention period. They
 * can be listed and put back (`ferry versions`, `ferry restore`).
 */
import { randomBytes } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { copyFileSafely } from '../core/copy-file.js';
import { FerryError } from '../core/errors.js';
import { checkRelativePath } from '../core/paths.js';
import { FolderPaths } from './folder-paths.js';

export const VERSIONS_DIR = '.ferry-versions';

/** One file in the version area. */
export interface StoredVersion {
  /** The file's path in the folder. */
  readonly path: string;
  /** When it was replaced or deleted (ms since the epoch, whole seconds). */
  readonly replacedAtMs: number;
  readonly size: number;
  /** Where it is kept, relative to the folder root. */
  readonly stored: string;
}

export class Versioner {
  constructor(
    readonly root: string,
    private readonly keepDays: number,
  ) {}

  /** Moves the file at absolute `abs` (folder path `rel`) into the version area. */
  archive(abs: string, rel: string, now = new Date()): string {
    const target = this.uniqueTarget(rel, now);
    mkdirSync(dirname(target), { recursive: true });
    renameSync(abs, target);
    return target;
  }

  /** The versions kept of `under` (a file, or everything below a directory; default all), by path, newest first. */
  list(under = ''): StoredVersion[] {
    const prefix = under === '' ? '' : checkRelativePath(under);
    const out: (StoredVersion & { n: number })[] = [];
    const walk = (dir: string) => {
      let entries;
      try {
        entries = readdirSync(join(this.root, VERSIONS_DIR, dir), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const rel = dir ? `${dir}/${e.name}` : e.name;
        if (e.isDirectory()) walk(rel);
        if (!e.isFile()) continue;
        const parsed = parseVersionName(e.name);
        if (!parsed) continue;
        const path = dir ? `${dir}/${parsed.name}` : parsed.name;
        if (prefix && path !== prefix && !path.startsWith(`${prefix}/`)) continue;
        const stored = `${VERSIONS_DIR}/${rel}`;
        out.push({ path, replacedAtMs: parsed.atMs, size: lstatSync(join(this.root, stored)).size, stored, n: parsed.n });
      }
    };
    // Only the directory that can hold `under`'s versions is walked.
    walk(prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '');
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : b.replacedAtMs - a.replacedAtMs || b.n - a.n));
    return out.map(({ n: _n, ...v }) => v);
  }

  /**
   * Puts a copy of `version` back at its path, as a new edit (modified now), so it syncs to
   * the other devices. What is at the path now is kept in the version area first (a hard link,
   * so the path never goes missing: a running node sees one change, not a delete). The version
   * itself stays where it is. Returns where the replaced file was kept, if there was one.
   */
  async restore(version: StoredVersion, now = new Date()): Promise<{ kept?: string }> {
    const abs = new FolderPaths(this.root).resolve(version.path, { createParents: true });
    const current = lstatSync(abs, { throwIfNoEntry: false });
    if (current?.isDirectory()) throw new FerryError('ALREADY_EXISTS', `${version.path} is a directory now; move it away to restore the file`);
    const temp = join(dirname(abs), `.ferry.tmp.restore.${randomBytes(6).toString('hex')}`);
    try {
      await copyFileSafely(join(this.root, version.stored), temp); // in the thread pool: a node serving the API keeps going
      utimesSync(temp, now, now);
      let kept: string | undefined;
      if (current) {
        kept = this.uniqueTarget(version.path, now);
        mkdirSync(dirname(kept), { recursive: true });
        linkSync(abs, kept);
      }
      renameSync(temp, abs);
      return { kept: kept && kept.slice(this.root.length + 1) };
    } finally {
      rmSync(temp, { force: true });
    }
  }

  /**
   * Deletes the oldest versions, whatever their age, until `bytes` of disk space are freed:
   * sync must not stall because of Ferry's own safety copies (Nextcloud expires versions the
   * same way when space runs short). When all of them would not free that much, none goes.
   * Returns what went.
   */
  makeRoom(bytes: number): { removed: number; freed: number } {
    const oldestFirst = this.list()
      .sort((a, b) => a.replacedAtMs - b.replacedAtMs)
      .map((v) => {
        const abs = join(this.root, v.stored);
        const st = lstatSync(abs, { throwIfNoEntry: false });
        // A version linked elsewhere too (see restore) frees nothing.
        return { abs, frees: st && st.nlink === 1 ? st.blocks * 512 : 0 };
      });
    if (oldestFirst.reduce((sum, v) => sum + v.frees, 0) < bytes) return { removed: 0, freed: 0 };
    let removed = 0;
    let freed = 0;
    for (const v of oldestFirst) {
      if (freed >= bytes) break;
      rmSync(v.abs, { force: true });
      removed++;
      freed += v.frees;
    }
    return { removed, freed };
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

export interface RestoreResult {
  readonly restored: { path: string; from: string; replacedAt: string; kept: string | null }[];
  /** Files under a restored directory left alone because they are there now. */
  readonly skipped: string[];
}

/**
 * `ferry restore` and the API's restore: a file with versions gets its newest one back, or the
 * one whose time (UTC digits, `2026-12-07 18:13:48` or a prefix such as `2026-12-07`) matches
 * `at`; a directory gets back every file under it that is missing now. NOT_FOUND when nothing
 * matches, INVALID_CONFIG for a malformed `at`.
 */
export async function restorePath(versioner: Versioner, path: string, at?: string): Promise<RestoreResult> {
  const digits = at === undefined ? undefined : timeDigits(at);
  const matches = (v: StoredVersion) => digits === undefined || new Date(v.replacedAtMs).toISOString().replace(/\D/g, '').startsWith(digits);
  const all = versioner.list(path);
  const own = all.filter((v) => v.path === path);
  if (own.length > 0 || all.length === 0) {
    if (own.length === 0) throw new FerryError('NOT_FOUND', `no versions of ${path} are kept`);
    const chosen = own.find(matches);
    if (!chosen) throw new FerryError('NOT_FOUND', `no version of ${path} replaced at ${at} (UTC); kept: ${own.map((v) => new Date(v.replacedAtMs).toISOString()).join(', ')}`);
    return { restored: [restoredEntry(chosen, (await versioner.restore(chosen)).kept)], skipped: [] };
  }
  // A directory: what was deleted under it comes back; files there now stay as they are.
  const restored: RestoreResult['restored'] = [];
  const skipped: string[] = [];
  for (const [file, versions] of versionsByPath(all)) {
    if (lstatSync(join(versioner.root, file), { throwIfNoEntry: false })) {
      skipped.push(file);
      continue;
    }
    const chosen = versions.find(matches);
    if (chosen) restored.push(restoredEntry(chosen, (await versioner.restore(chosen)).kept));
  }
  if (restored.length === 0) {
    throw new FerryError('NOT_FOUND', `nothing to restore under ${path}${at ? ` replaced at ${at} (UTC)` : ''}: ${skipped.length} file(s) with versions are there now`);
  }
  return { restored, skipped };
}

/** Versions by the path they were kept of, in the order given (`list`: newest first). */
export function versionsByPath(versions: readonly StoredVersion[]): Map<string, StoredVersion[]> {
  const byPath = new Map<string, StoredVersion[]>();
  for (const v of versions) {
    const list = byPath.get(v.path);
    if (list) list.push(v);
    else byPath.set(v.path, [v]);
  }
  return byPath;
}

/** How a restored version is reported: where it came from, when it was replaced, where what it replaced is kept. */
export function restoredEntry(v: StoredVersion, kept: string | undefined): RestoreResult['restored'][number] {
  return { path: v.path, from: v.stored, replacedAt: new Date(v.replacedAtMs).toISOString(), kept: kept ?? null };
}

function timeDigits(at: string): string {
  // Fractions of a second (an ISO time from the API's listing) say nothing more: stamps are whole seconds.
  const digits = at.replace(/\.\d+(?=Z?$)/, '').replace(/\D/g, '');
  if (digits.length < 8 || digits.length > 14) {
    throw new FerryError('INVALID_CONFIG', `--at ${JSON.stringify(at)}: give a time as \`ferry versions\` prints it, e.g. 2026-12-07 18:13:48 or just 2026-12-07`);
  }
  return digits;
}

/** `b~20261121-143005-1.txt` → the file's own name `b.txt`, when it was replaced, and the tie-breaker 1. */
export function parseVersionName(name: string): { name: string; atMs: number; n: number } | undefined {
  const m = /^(.*)~(\d{8}-\d{6})(?:-(\d+))?(\.[^.]*)?$/.exec(name);
  const atMs = m ? parseStamp(`~${m[2]}`) : undefined;
  // A stamp that is no real time (month 13) is no version of Ferry's.
  if (!m || atMs === undefined || m[1] === '' || formatStamp(new Date(atMs)) !== m[2]) return undefined;
  return { name: `${m[1]}${m[4] ?? ''}`, atMs, n: Number(m[3] ?? 0) };
}

function parseStamp(name: string): number | undefined {
  const m = /~(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(name);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}
