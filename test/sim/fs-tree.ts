/**
 * Reading a node's folder the way the invariants need it, synchronously (so nothing the
 * engine does can interleave with a snapshot in the same process): the tree under real names,
 * every content present anywhere (real names, conflict copies, the version area), and Ferry's
 * temporary files. Hashes are cached by (inode, size, mtime, ctime).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

export interface TreeEntry {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number;
  /** sha256 of a file's bytes or a symlink's target; '' for a directory. */
  readonly hash: string;
  readonly size: number;
}

export type Tree = Map<string, TreeEntry>;

export type Area = 'real' | 'versions' | 'temp' | 'internal';

export interface Found {
  readonly path: string;
  readonly area: Area;
  readonly entry: TreeEntry;
}

export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
export const EMPTY_HASH = sha256('');

export class HashCache {
  private readonly cache = new Map<string, string>();

  hash(abs: string, st: BigIntStats): string {
    const key = `${abs}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    let h = this.cache.get(key);
    if (h === undefined) {
      h = sha256(readFileSync(abs));
      if (this.cache.size > 50_000) this.cache.clear();
      this.cache.set(key, h);
    }
    return h;
  }
}

/** Which part of a folder a relative path is in. */
export function areaOf(rel: string): Area {
  const parts = rel.split('/');
  if (parts.some((p) => p.startsWith('.ferry.tmp.'))) return 'temp';
  if (parts[0] === '.ferry-versions') return 'versions';
  if (parts.some((p) => p.startsWith('.ferry'))) return 'internal';
  return 'real';
}

/** Every entry under `root` (recursively), with its area; files hashed. */
export function walkFolder(root: string, cache: HashCache): Found[] {
  const out: Found[] = [];
  const walk = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      let st: BigIntStats;
      try {
        st = lstatSync(a, { bigint: true });
      } catch {
        continue;
      }
      const mode = Number(st.mode & 0o777n);
      const area = areaOf(r);
      if (st.isDirectory()) {
        out.push({ path: r, area, entry: { type: 'dir', mode, hash: '', size: 0 } });
        walk(a, r);
      } else if (st.isFile()) {
        let hash: string;
        try {
          hash = cache.hash(a, st);
        } catch {
          continue; // vanished while we looked
        }
        out.push({ path: r, area, entry: { type: 'file', mode, hash, size: Number(st.size) } });
      } else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = readlinkSync(a);
        } catch {
          continue; // vanished while we looked
        }
        out.push({ path: r, area, entry: { type: 'symlink', mode: 0, hash: sha256(target), size: 0 } });
      } else {
        out.push({ path: r, area, entry: { type: 'other', mode, hash: '', size: 0 } });
      }
    }
  };
  walk(root, '');
  return out;
}

/** The tree under real names (Ferry's own `.ferry*` names left out at any depth). */
export function realTree(root: string, cache: HashCache): Tree {
  const tree: Tree = new Map();
  for (const f of walkFolder(root, cache)) if (f.area === 'real') tree.set(f.path, f.entry);
  return tree;
}

export function describeEntry(e: TreeEntry | undefined): string {
  if (!e) return 'absent';
  if (e.type === 'dir') return `dir ${e.mode.toString(8)}`;
  if (e.type === 'symlink') return `symlink ${e.hash.slice(0, 10)}`;
  return `${e.type} ${e.mode.toString(8)} ${e.size} B ${e.hash.slice(0, 10)}`;
}

export function sameEntry(a: TreeEntry | undefined, b: TreeEntry | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.type === b.type && a.mode === b.mode && a.hash === b.hash;
}

/** Differences between two trees, one line each (at most `limit`). */
export function diffTrees(a: Tree, b: Tree, nameA: string, nameB: string, limit = 20): string[] {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const lines: string[] = [];
  let count = 0;
  for (const k of keys) {
    if (sameEntry(a.get(k), b.get(k))) continue;
    count++;
    if (lines.length < limit) lines.push(`${JSON.stringify(k)}: ${nameA}=${describeEntry(a.get(k))} | ${nameB}=${describeEntry(b.get(k))}`);
  }
  if (count > limit) lines.push(`… and ${count - limit} more`);
  return lines;
}
