/**
 * The invariants of ARCHITECTURE.md ("What must always hold"), checked on the folders once
 * the nodes are quiet, for the in-process and the real-process simulations alike:
 *
 * 1. Convergence: every node has the same tree under real names (paths, types, modes, bytes).
 * 2. No silent loss: every content the oracle still requires is current somewhere, a conflict
 *    copy, or in some node's version area (`.ferry-versions/`).
 * 3. No torn files: every file under a real name holds a content some operation wrote, and
 *    no temporary file (`.ferry.tmp.*`) is left anywhere.
 * 4. No escape: nothing beside the folders changed (canaries, the directories that hold the
 *    folders and homes), and a home holds only the node's own files.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { diffTrees, walkFolder, realTree, sha256, type HashCache, type Tree } from './fs-tree.js';
import type { Oracle } from './oracle.js';
import { tempName } from '../../src/engine/puller.js';

export interface NodeFolders {
  readonly name: string;
  readonly folder: string;
  /** The node's home (skipped by the outside snapshot). */
  readonly home: string;
}

export interface CheckOptions {
  /** Only check that the trees are equal (used while waiting for convergence). */
  readonly convergenceOnly?: boolean;
  /** snapshotOutside() taken at the start, and the root it was taken of. */
  readonly outside?: string;
  readonly root?: string;
  /** Names allowed in a home besides the index database (real nodes keep identity and logs). */
  readonly homeEntries?: RegExp;
  /** Paths that may have had a download (to name the path a leftover temporary file was for). */
  readonly knownPaths?: Iterable<string>;
}

/** Prefix of the violation for a temporary file left behind (a known open engine bug). */
export const TEMP_LEFT = 'temporary file left';

/** A home holds the node's databases (the index, and whatever other .db the node keeps). */
const DEFAULT_HOME_ENTRIES = /^[\w.-]+\.db(-wal|-shm|-journal)?$/;

export function checkInvariants(nodes: readonly NodeFolders[], oracle: Oracle, cache: HashCache, opts: CheckOptions = {}): string[] {
  const out: string[] = [];
  const trees: Tree[] = nodes.map((n) => realTree(n.folder, cache));
  for (let i = 1; i < nodes.length; i++) {
    const d = diffTrees(trees[0]!, trees[i]!, nodes[0]!.name, nodes[i]!.name);
    if (d.length > 0) out.push(`convergence: ${nodes[0]!.name} and ${nodes[i]!.name} differ:\n${d.join('\n')}`);
  }
  if (opts.convergenceOnly) return out;

  // No silent loss.
  const present = new Map<string, string>();
  for (const n of nodes) {
    for (const f of walkFolder(n.folder, cache)) {
      if (f.entry.type !== 'file' || (f.area !== 'real' && f.area !== 'versions')) continue;
      if (!present.has(f.entry.hash)) present.set(f.entry.hash, `${n.name}:${f.path}`);
    }
  }
  const lost = [...oracle.required].filter(([h]) => !present.has(h));
  for (const [h, p] of lost.slice(0, 20)) out.push(`lost: content ${h.slice(0, 10)} written at step #${p.step} (${p.what}) is nowhere: not current, not a conflict copy, not in any version area`);
  if (lost.length > 20) out.push(`lost: … and ${lost.length - 20} more contents`);

  // No torn files, no temporary files left.
  out.push(...checkNoTornFiles(nodes, oracle, cache));
  const byTemp = new Map<string, string>();
  for (const tree of trees) for (const p of tree.keys()) byTemp.set(tempName(p), p);
  for (const p of opts.knownPaths ?? []) byTemp.set(tempName(p), p);
  for (const n of nodes) {
    const temps = walkFolder(n.folder, cache).filter((f) => f.area === 'temp');
    for (const t of temps.slice(0, 10)) {
      const base = t.path.slice(t.path.lastIndexOf('/') + 1);
      const of = byTemp.get(base);
      out.push(`${TEMP_LEFT}: ${n.name}:${t.path} (${t.entry.size} B${of ? `, a download of ${JSON.stringify(of)}` : ''})`);
    }
  }

  // No escape.
  if (opts.outside !== undefined && opts.root !== undefined) {
    const now = snapshotOutside(opts.root, nodes);
    if (now !== opts.outside) out.push(`escape: something outside the folders changed:\n${lineDiff(opts.outside, now).join('\n')}`);
  }
  const allowed = opts.homeEntries ?? DEFAULT_HOME_ENTRIES;
  for (const n of nodes) {
    let names: string[] = [];
    try {
      names = readdirSync(n.home);
    } catch {
      continue;
    }
    const odd = names.filter((x) => !allowed.test(x));
    if (odd.length) out.push(`escape: unexpected entries in ${n.name}'s home: ${odd.join(', ')}`);
  }
  return out;
}

/** Every file under a real name (conflict copies included) holds content some operation wrote. */
export function checkNoTornFiles(nodes: readonly NodeFolders[], oracle: Oracle, cache: HashCache): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    for (const f of walkFolder(n.folder, cache)) {
      if (f.area !== 'real' || f.entry.type !== 'file') continue;
      if (!oracle.written.has(f.entry.hash)) out.push(`torn or invented file: ${n.name}:${f.path} (${f.entry.size} B, ${f.entry.hash.slice(0, 10)}) holds content no operation wrote`);
    }
  }
  return out;
}

/**
 * A listing (path, type, content hash) of everything under `root` except the node folders and
 * homes themselves (their entries are listed, their contents are not) and the staging area.
 */
export function snapshotOutside(root: string, nodes: readonly NodeFolders[]): string {
  const skip = new Set([...nodes.flatMap((n) => [n.folder, n.home]), join(root, 'staging')]);
  const lines: string[] = [];
  const walk = (abs: string) => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const a = join(abs, name);
      const rel = relative(root, a);
      const st = lstatSync(a, { throwIfNoEntry: false });
      if (!st) continue;
      if (skip.has(a)) {
        lines.push(`${rel} (${st.isDirectory() ? 'dir' : 'not a dir!'})`);
        continue;
      }
      if (st.isDirectory()) {
        lines.push(`${rel}/ ${(st.mode & 0o777).toString(8)}`);
        walk(a);
      } else if (st.isFile()) {
        lines.push(`${rel} ${st.size} ${sha256(readFileSyncSafe(a))}`);
      } else lines.push(`${rel} ${st.isSymbolicLink() ? 'symlink' : 'other'}`);
    }
  };
  walk(root);
  return lines.join('\n');
}

function readFileSyncSafe(p: string): Buffer {
  try {
    return readFileSync(p);
  } catch {
    return Buffer.alloc(0);
  }
}

function lineDiff(a: string, b: string): string[] {
  const A = new Set(a.split('\n'));
  const B = new Set(b.split('\n'));
  return [...[...A].filter((l) => !B.has(l)).map((l) => `  - ${l}`), ...[...B].filter((l) => !A.has(l)).map((l) => `  + ${l}`)].slice(0, 20);
}

export type { Tree };
