/**
 * The simulated users: operations on a node's folder, resolved from a step's plan against what
 * is on disk when it runs. Everything here is synchronous, so in the in-process simulation an
 * operation is atomic with respect to the engine running in the same thread (a user's editor
 * racing the engine is the real-process variant's job, where writes go through a staging file
 * and a rename, as editors save). Each write is recorded in the oracle; each content a user
 * replaces or deletes is reported as superseded.
 */
import { chmodSync, lstatSync, mkdirSync, symlinkSync, openSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync, closeSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Oracle } from './oracle.js';
import type { HashCache } from './fs-tree.js';
import { sha256, walkFolder } from './fs-tree.js';
import { seededContent } from './rng.js';
import type { OpPlan } from './schedule.js';

export const FILE_NAMES = ['a.txt', 'b.txt', 'notes.md', 'Report.md', 'data.bin', 'x', 'café.txt', 'with space.txt', '.hidden', 'ünï-名前.txt'];
export const DIR_NAMES = ['d1', 'd2', 'Docs', 'sub', 'Ärger', 'deep'];
/** Where simulated users point symlinks: inside the folder, outside it (the canaries), nowhere. */
export const LINK_TARGETS = ['a.txt', 'd1', 'sub/x', '../canary', '../canary/sub', '../../canary/a.txt', '/tmp', 'nowhere'];
const MiB = 1024 * 1024;

export interface OpEnv {
  readonly seed: number;
  readonly nodeCount: number;
  readonly atomicWrites: boolean;
  /** A directory on the same file system as the folders, for atomic saves. */
  readonly stagingDir: string;
  readonly oracle: Oracle;
  readonly cache: HashCache;
  name(i: number): string;
  folder(i: number): string;
  /** Every content present in any node's folder (real names and version areas, not temporary files). */
  presentContents(): Set<string>;
  /** The user changed node i's folder: scan now, or leave it for a later scan. */
  changed(i: number, scanNow: boolean): void;
  /** Cuts these nodes off from all others (in-process only). */
  isolate?(nodes: number[]): void;
}

interface Listing {
  files: { path: string; size: number }[];
  dirs: string[];
  links: string[];
}

/** Files and directories under real names, sorted (no hashing). */
export function listFolder(root: string): Listing {
  const out: Listing = { files: [], dirs: [], links: [] };
  const walk = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.ferry')) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(abs, name), { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) {
        out.dirs.push(r);
        walk(join(abs, name), r);
      } else if (st.isFile()) out.files.push({ path: r, size: st.size });
      else if (st.isSymbolicLink()) out.links.push(r);
    }
  };
  walk(root, '');
  return out;
}

const pickU = <T>(items: readonly T[], u: number): T => items[Math.min(items.length - 1, Math.floor(u * items.length))]!;
const joinRel = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);
const dirOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
const baseOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);

function toggleCase(name: string): string {
  const lower = name.toLowerCase();
  if (name !== lower) return lower;
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export class Operations {
  private step = 0;
  private superseded: string[] = [];

  constructor(private readonly env: OpEnv) {}

  /** Runs one planned operation; returns what it did, for the trace. */
  run(op: OpPlan, step: number): string {
    this.step = step;
    this.superseded = [];
    let what: string;
    try {
      what = this.dispatch(op);
    } catch (err) {
      // A harness bug or a race with the engine; whatever it changed before failing must be scanned.
      what = `${op.kind} on ${this.env.name(op.node)} failed: ${(err as Error).message}`;
      this.env.changed(op.node, op.scan);
      this.env.changed(op.other, op.scan);
    }
    if (this.superseded.length > 0) {
      const present = this.env.presentContents();
      for (const h of this.superseded) this.env.oracle.noteSuperseded(h, present.has(h), { step, what });
    }
    return what;
  }

  private dispatch(op: OpPlan): string {
    const i = op.node;
    const j = op.other;
    const [u0, u1, u2] = op.u;
    const l = listFolder(this.env.folder(i));
    const files = l.files.map((f) => f.path);
    switch (op.kind) {
      case 'create':
      case 'empty':
      case 'large': {
        const rel = joinRel(pickU(['', ...l.dirs], u0), pickU(FILE_NAMES, u1));
        const size = op.kind === 'empty' ? 0 : op.size;
        return this.done(i, op.scan, `${op.kind} ${this.put(i, rel, this.content(size, op.contentSeed, i))}`);
      }
      case 'mkdir': {
        let rel = joinRel(pickU(['', ...l.dirs], u0), pickU(DIR_NAMES, u1));
        if (op.flag) rel = joinRel(rel, pickU(DIR_NAMES, u2));
        if (!this.mkdirs(i, rel)) return `mkdir ${this.at(i, rel)} skipped: a file is in the way`;
        return this.done(i, op.scan, `mkdir ${this.at(i, rel)}`);
      }
      case 'overwrite': {
        if (files.length === 0) return this.run({ ...op, kind: 'create' }, this.step);
        const rel = pickU(files, u0);
        return this.done(i, op.scan, `overwrite ${this.put(i, rel, this.content(op.size, op.contentSeed, i))}`);
      }
      case 'append': {
        if (files.length === 0) return this.run({ ...op, kind: 'create' }, this.step);
        const rel = pickU(files, u0);
        const add = this.content(Math.max(1, op.size % 65536), op.contentSeed, i);
        return this.done(i, op.scan, `append ${add.length} B to ${this.modify(i, rel, (old) => Buffer.concat([old, add]), { append: add })}`);
      }
      case 'editMiddle':
      case 'largeEdit': {
        const candidates = l.files.filter((f) => f.size >= (op.kind === 'largeEdit' ? MiB : 1)).map((f) => f.path);
        if (candidates.length === 0) return this.run({ ...op, kind: op.kind === 'largeEdit' ? 'large' : 'create', size: op.kind === 'largeEdit' ? MiB + (op.size % (4 * MiB)) : op.size }, this.step);
        const rel = pickU(candidates, u0);
        const insert = op.kind === 'largeEdit' && op.flag;
        let detail = '';
        const r = this.modify(i, rel, (old) => {
          const at = Math.floor(u1 * old.length);
          const len = Math.max(1, Math.min(old.length - at, 1 + Math.floor(u2 * (op.kind === 'largeEdit' ? 65536 : 4096))));
          const patch = seededContent(len, op.contentSeed);
          detail = `${insert ? 'insert' : 'edit'} ${len} B at ${at}`;
          if (insert) return Buffer.concat([old.subarray(0, at), patch, old.subarray(at)]);
          const next = Buffer.from(old);
          patch.copy(next, at);
          return next;
        }, insert ? {} : { inPlace: true });
        return this.done(i, op.scan, `${op.kind} ${detail} of ${r}`);
      }
      case 'truncate': {
        if (files.length === 0) return this.run({ ...op, kind: 'create' }, this.step);
        const rel = pickU(files, u0);
        let len = 0;
        const r = this.modify(i, rel, (old) => old.subarray(0, (len = op.flag ? 0 : Math.floor(u1 * old.length))), { truncate: true });
        return this.done(i, op.scan, `truncate to ${len} B ${r}`);
      }
      case 'deleteFile': {
        const entries = [...files, ...l.links].sort();
        if (entries.length === 0) return 'deleteFile: no file';
        const rel = pickU(entries, u0);
        this.supersedeFile(i, rel);
        unlinkSync(this.abs(i, rel));
        return this.done(i, op.scan, `delete ${this.at(i, rel)}`);
      }
      case 'renameFile': {
        const entries = [...files, ...l.links].sort();
        if (entries.length === 0) return 'renameFile: no file';
        const from = pickU(entries, u0);
        const to = joinRel(op.flag ? dirOf(from) : pickU(['', ...l.dirs], u1), pickU(FILE_NAMES, u2));
        return this.done(i, op.scan, this.move(i, from, to, true));
      }
      case 'renameDir': {
        if (l.dirs.length === 0) return 'renameDir: no directory';
        const from = pickU(l.dirs, u0);
        const parents = ['', ...l.dirs].filter((p) => p !== from && !p.startsWith(from + '/'));
        const to = joinRel(pickU(parents, u1), pickU(DIR_NAMES, u2));
        return this.done(i, op.scan, this.move(i, from, to, false));
      }
      case 'deleteDir': {
        if (l.dirs.length === 0) return 'deleteDir: no directory';
        const rel = pickU(l.dirs, u0);
        const n = this.removeTree(i, rel);
        return this.done(i, op.scan, `rm -rf ${this.at(i, rel)} (${n} files)`);
      }
      case 'changeCase': {
        const entries = [...files, ...l.dirs].sort();
        if (entries.length === 0) return 'changeCase: nothing';
        const from = pickU(entries, u0);
        const to = joinRel(dirOf(from), toggleCase(baseOf(from)));
        if (to === from) return `changeCase ${this.at(i, from)}: no letters`;
        return this.done(i, op.scan, `change case: ${this.move(i, from, to, false)}`);
      }
      case 'symlink': {
        const rel = joinRel(pickU(['', ...l.dirs], u0), pickU([...FILE_NAMES, ...DIR_NAMES], u1));
        const target = pickU(LINK_TARGETS, u2);
        if (lstatSync(this.abs(i, rel), { throwIfNoEntry: false })) return `symlink ${this.at(i, rel)} skipped: exists`;
        symlinkSync(target, this.abs(i, rel));
        return this.done(i, op.scan, `symlink ${this.at(i, rel)} -> ${target}`);
      }
      case 'chmod': {
        if (files.length === 0) return 'chmod: no file';
        const rel = pickU(files, u0);
        const mode = (lstatSync(this.abs(i, rel)).mode & 0o111) !== 0 ? 0o644 : 0o755;
        chmodSync(this.abs(i, rel), mode);
        return this.done(i, op.scan, `chmod ${mode.toString(8)} ${this.at(i, rel)}`);
      }
      case 'typeClash': {
        // One name, two kinds: a directory (with a file in it) on one node, a file or a symlink on another.
        const rel = joinRel(pickU(['', ...l.dirs], u0), pickU([...DIR_NAMES, ...FILE_NAMES], u1));
        const parts: string[] = [];
        if (lstatSync(this.abs(i, rel), { throwIfNoEntry: false }) || !this.mkdirs(i, rel)) parts.push(`${this.at(i, rel)} exists`);
        else parts.push(`mkdir ${this.at(i, rel)} + ${this.put(i, joinRel(rel, pickU(FILE_NAMES, u2)), this.content(op.size, op.contentSeed, i))}`);
        const there = lstatSync(this.abs(j, rel), { throwIfNoEntry: false });
        if (there || !this.mkdirs(j, dirOf(rel))) parts.push(`${this.at(j, rel)} exists`);
        else if (op.flag) {
          const target = pickU(LINK_TARGETS, u2);
          symlinkSync(target, this.abs(j, rel));
          parts.push(`symlink ${this.at(j, rel)} -> ${target}`);
        } else parts.push(this.put(j, rel, this.content(op.size, (op.contentSeed ^ 0x27d4eb2f) >>> 0, j)));
        this.env.changed(i, true);
        this.env.changed(j, true);
        return `type clash: ${parts.join(' ; ')}`;
      }
      case 'bothCreate': {
        const rel = joinRel(pickU(['', ...l.dirs], u0), pickU(FILE_NAMES, u1));
        const a = this.content(op.size, op.contentSeed, i);
        const b = op.flag ? a : this.content(op.size, (op.contentSeed ^ 0x5bd1e995) >>> 0, j);
        const parts = [i, j].map((n, k) => (this.mkdirs(n, dirOf(rel)) ? this.put(n, rel, k === 0 ? a : b) : `${this.at(n, rel)} skipped`));
        this.env.changed(i, true);
        this.env.changed(j, true);
        return `same path created on two nodes${op.flag ? ' (same bytes)' : ''}: ${parts.join(' ; ')}`;
      }
      case 'bothEdit': {
        if (files.length === 0) return this.run({ ...op, kind: 'bothCreate' }, this.step);
        const rel = pickU(files, u0);
        let isolated = '';
        if (op.flag && this.env.isolate) {
          this.env.isolate([i, j]);
          isolated = ` while ${this.env.name(i)} and ${this.env.name(j)} are cut off`;
        }
        const parts = [i, j].map((n, k) => {
          const seed = (op.contentSeed + k * 0x9e3779b9) >>> 0;
          const st = lstatSync(this.abs(n, rel), { throwIfNoEntry: false });
          if (st?.isDirectory()) return `${this.at(n, rel)} is a directory here`;
          if (!st && !this.mkdirs(n, dirOf(rel))) return `${this.at(n, rel)} skipped`;
          if (!st || !st.isFile() || (k === 0 ? u1 : u2) < 0.5) return `overwrite ${this.put(n, rel, this.content(op.size, seed, n))}`;
          const add = this.content(1 + (op.size % 8192), seed, n);
          return `append to ${this.modify(n, rel, (old) => Buffer.concat([old, add]), { append: add })}`;
        });
        this.env.changed(i, true);
        this.env.changed(j, true);
        return `same file edited on two nodes${isolated}: ${parts.join(' ; ')}`;
      }
      case 'deleteDirVsAdd': {
        if (l.dirs.length === 0) return 'deleteDirVsAdd: no directory';
        const dir = pickU(l.dirs, u0);
        const n = this.removeTree(i, dir);
        const rel = joinRel(dir, pickU(FILE_NAMES, u1));
        const added = this.mkdirs(j, dir) ? this.put(j, rel, this.content(op.size, op.contentSeed, j)) : `${this.at(j, rel)} skipped`;
        this.env.changed(i, true);
        this.env.changed(j, true);
        return `rm -rf ${this.at(i, dir)} (${n} files) while adding ${added}`;
      }
    }
  }

  // ---- helpers ------------------------------------------------------------------------

  private abs(i: number, rel: string): string {
    return join(this.env.folder(i), ...rel.split('/'));
  }

  private at(i: number, rel: string): string {
    return `${this.env.name(i)}:${rel}`;
  }

  private done(i: number, scan: boolean, what: string): string {
    this.env.changed(i, scan);
    return what;
  }

  /** Unique bytes for a new content (a tag up front, then seeded noise). */
  private content(size: number, seed: number, node: number): Buffer {
    if (size === 0) return Buffer.alloc(0);
    const data = seededContent(size, seed);
    const tag = Buffer.from(`s${this.env.seed}#${this.step}@${this.env.name(node)}:${seed.toString(16)}\n`);
    tag.copy(data, 0, 0, Math.min(tag.length, size));
    return data;
  }

  /** Creates missing directories of `rel`; false when something else (a file, a symlink) is in the way. */
  private mkdirs(i: number, rel: string): boolean {
    if (!rel) return true;
    let dir = '';
    for (const part of rel.split('/')) {
      dir = joinRel(dir, part);
      const st = lstatSync(this.abs(i, dir), { throwIfNoEntry: false });
      if (!st) mkdirSync(this.abs(i, dir));
      else if (!st.isDirectory()) return false;
    }
    return true;
  }

  private hashOf(abs: string): string | undefined {
    const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    return st?.isFile() ? this.env.cache.hash(abs, st) : undefined;
  }

  private supersedeFile(i: number, rel: string): void {
    const h = this.hashOf(this.abs(i, rel));
    if (h !== undefined) this.superseded.push(h);
  }

  private record(data: Buffer, rel: string, what: string): string {
    this.env.oracle.paths.add(rel);
    const h = sha256(data);
    this.env.oracle.noteWritten(h, { step: this.step, what });
    return h;
  }

  /** Writes a whole file (replacing what is there); returns "node:path size hash". */
  private put(i: number, rel: string, data: Buffer): string {
    const abs = this.abs(i, rel);
    if (!this.mkdirs(i, dirOf(rel))) return `${this.at(i, rel)} skipped: a parent is not a directory`;
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (st?.isDirectory()) return `${this.at(i, rel)} skipped: is a directory`;
    if (st?.isSymbolicLink()) unlinkSync(abs); // a file replaces the link, never writes through it
    else if (st) this.supersedeFile(i, rel);
    const desc = `${this.at(i, rel)} ${data.length} B`;
    const h = this.record(data, rel, desc);
    this.writeWhole(i, abs, data);
    return `${desc} ${h.slice(0, 8)}`;
  }

  private writeWhole(i: number, abs: string, data: Buffer): void {
    if (!this.env.atomicWrites) {
      writeFileSync(abs, data);
      return;
    }
    mkdirSync(this.env.stagingDir, { recursive: true });
    const staged = join(this.env.stagingDir, `save-${this.env.name(i)}-${this.step}`);
    writeFileSync(staged, data);
    renameSync(staged, abs);
  }

  /** Changes a file's content the way a user's edit would: in place when asked and allowed. */
  private modify(i: number, rel: string, change: (old: Buffer) => Buffer, how: { append?: Buffer; inPlace?: boolean; truncate?: boolean }): string {
    const abs = this.abs(i, rel);
    const old = readFileSync(abs);
    const next = change(old);
    this.superseded.push(sha256(old));
    const desc = `${this.at(i, rel)} ${old.length}->${next.length} B`;
    const h = this.record(next, rel, desc);
    if (this.env.atomicWrites) this.writeWhole(i, abs, next);
    else if (how.append) appendFileSync(abs, how.append);
    else if (how.truncate) truncateSync(abs, next.length);
    else if (how.inPlace) {
      const fd = openSync(abs, 'r+');
      try {
        // Only the bytes that changed, at their offset: what an editor patching a big file does.
        let a = 0;
        while (a < next.length && next[a] === old[a]) a++;
        let b = next.length;
        while (b > a && next[b - 1] === old[b - 1]) b--;
        if (b > a) writeSync(fd, next, a, b - a, a);
      } finally {
        closeSync(fd);
      }
    } else writeFileSync(abs, next);
    return `${desc} ${h.slice(0, 8)}`;
  }

  private move(i: number, from: string, to: string, fileOnly: boolean): string {
    if (from === to) return `mv ${this.at(i, from)}: same name`;
    const dst = lstatSync(this.abs(i, to), { throwIfNoEntry: false });
    if (dst?.isDirectory() || (dst && !fileOnly)) return `mv ${this.at(i, from)} -> ${to} skipped: target exists`;
    if (dst) this.supersedeFile(i, to);
    renameSync(this.abs(i, from), this.abs(i, to));
    return `mv ${this.at(i, from)} -> ${to}${dst ? ' (replacing it)' : ''}`;
  }

  private removeTree(i: number, rel: string): number {
    const abs = this.abs(i, rel);
    let n = 0;
    for (const f of walkFolder(abs, this.env.cache)) {
      if (f.entry.type !== 'file' || f.area !== 'real') continue;
      this.superseded.push(f.entry.hash);
      n++;
    }
    rmSync(abs, { recursive: true, force: true });
    return n;
  }
}
