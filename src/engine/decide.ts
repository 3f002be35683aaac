/**
 * What to do about one path, given this node's record and what the peers announced. Pure
 * logic, no I/O: the newest version (by version vector) wins; of two concurrent versions one
 * deterministic winner keeps the name and the loser becomes a conflict copy, made by the node
 * that holds the loser. Edit beats delete. Identical concurrent content is not a conflict.
 */
import { contentHash, sameContent, type FileRecord } from '../core/file-record.js';
import { compareVersions, mergeVersions } from '../core/version-vector.js';

export type Decision =
  /** Nothing to do: in sync, or ours is newer (the peers will pull it). */
  | { readonly kind: 'none' }
  /** Store `record` as ours without touching the disk (same content, or a delete of nothing). */
  | { readonly kind: 'adopt'; readonly record: FileRecord }
  /** Make the disk match `record`; when `conflictCopy`, keep our current version beside it first. */
  | { readonly kind: 'apply'; readonly record: FileRecord; readonly conflictCopy: boolean };

const NONE: Decision = { kind: 'none' };

export function decide(local: FileRecord | undefined, remotes: readonly FileRecord[]): Decision {
  if (remotes.length === 0) return NONE;
  const global = newestOf(remotes);
  if (!local) {
    return global.deleted ? { kind: 'adopt', record: global } : { kind: 'apply', record: global, conflictCopy: false };
  }
  switch (compareVersions(local.version, global.version)) {
    case 'equal':
    case 'greater':
      return NONE;
    case 'lesser':
      return sameOnDiskExactly(local, global) ? { kind: 'adopt', record: global } : { kind: 'apply', record: global, conflictCopy: false };
    case 'concurrent': {
      const merged = { ...global, version: mergeVersions(local.version, global.version) };
      if (sameOnDiskExactly(local, global)) return { kind: 'adopt', record: merged };
      if (conflictWinner(local, global) === local) return NONE;
      const keepLocal = !local.deleted && local.type !== 'dir';
      return { kind: 'apply', record: merged, conflictCopy: keepLocal };
    }
  }
}

/** The newest of several records of one path; concurrent ones are settled by conflictWinner. */
export function newestOf(records: readonly FileRecord[]): FileRecord {
  let best = records[0]!;
  for (const r of records.slice(1)) {
    const order = compareVersions(r.version, best.version);
    if (order === 'greater' || (order === 'concurrent' && conflictWinner(best, r) === r)) best = r;
  }
  return best;
}

/**
 * The deterministic winner of two concurrent versions, the same on every node: an existing
 * file beats a deletion, then the newer modification time, then the larger device ID, then
 * the larger content hash.
 */
export function conflictWinner(a: FileRecord, b: FileRecord): FileRecord {
  if (a.deleted !== b.deleted) return a.deleted ? b : a;
  if (a.mtimeMs !== b.mtimeMs) return a.mtimeMs > b.mtimeMs ? a : b;
  if (a.modifiedBy !== b.modifiedBy) return a.modifiedBy > b.modifiedBy ? a : b;
  return Buffer.compare(contentHash(a.blocks), contentHash(b.blocks)) >= 0 ? a : b;
}

function sameOnDiskExactly(a: FileRecord, b: FileRecord): boolean {
  if (!sameContent(a, b)) return false;
  if (a.deleted) return true;
  if (a.type === 'symlink') return true;
  return a.mode === b.mode && (a.type === 'dir' || a.mtimeMs === b.mtimeMs);
}
