/**
 * The file record: what a node knows about one path in one folder. Records are exchanged
 * between peers and stored in the index; `blocks` lists the content-defined chunks in order.
 */
import { createHash } from 'node:crypto';
import type { VersionVector } from './version-vector.js';

export type FileType = 'file' | 'dir' | 'symlink';

export interface BlockRef {
  /** SHA-256 of the block's bytes (32 bytes). */
  readonly hash: Buffer;
  readonly size: number;
}

export interface FileRecord {
  readonly path: string;
  readonly type: FileType;
  readonly size: number;
  /** Modification time in milliseconds since the epoch (fractional part keeps sub-ms precision). */
  readonly mtimeMs: number;
  /** Permission bits (mode & 0o7777). */
  readonly mode: number;
  readonly deleted: boolean;
  readonly version: VersionVector;
  /** Short ID of the device that made this version. */
  readonly modifiedBy: string;
  /** The announcing node's sequence number for this record (0 before it is stored). */
  readonly sequence: number;
  readonly blocks: readonly BlockRef[];
  /** For symlinks: the link target, stored as text and never followed. */
  readonly symlinkTarget?: string;
}

/** A digest of a file's content: SHA-256 over its block hashes in order. */
export function contentHash(blocks: readonly BlockRef[]): Buffer {
  const h = createHash('sha256');
  for (const b of blocks) h.update(b.hash);
  return h.digest();
}

/** True when two records describe the same bytes/link/dir (ignoring version and time). */
export function sameContent(a: FileRecord, b: FileRecord): boolean {
  if (a.type !== b.type || a.deleted !== b.deleted) return false;
  if (a.deleted) return true;
  if (a.type === 'symlink') return a.symlinkTarget === b.symlinkTarget;
  if (a.type === 'dir') return true;
  if (a.size !== b.size || a.blocks.length !== b.blocks.length) return false;
  for (let i = 0; i < a.blocks.length; i++) {
    if (a.blocks[i]!.size !== b.blocks[i]!.size || !a.blocks[i]!.hash.equals(b.blocks[i]!.hash)) return false;
  }
  return true;
}

/** sameContent plus equal permission bits: nothing on disk would change. */
export function sameOnDisk(a: FileRecord, b: FileRecord): boolean {
  return sameContent(a, b) && (a.deleted || a.type === 'symlink' || a.mode === b.mode);
}

/** Byte offsets of each block, derived from the sizes. */
export function blockOffsets(blocks: readonly BlockRef[]): number[] {
  const out = new Array<number>(blocks.length);
  let offset = 0;
  for (let i = 0; i < blocks.length; i++) {
    out[i] = offset;
    offset += blocks[i]!.size;
  }
  return out;
}
