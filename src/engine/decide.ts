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
  if (!local) {
    const global = newestOf(remotes);
    return global.deleted ? { kind: 'adopt', record: global } : { kind: 'apply', record: global, conflictCopy: false };
  }
  // The newest of everything known, ours included: judged only against the newest of the
  // others, ours could lose to a record that a third one supersedes, or beat a record that
  // loses to a third one, and nodes holding the same records would keep different versions.
  const all = newestOf([local, ...remotes]);
  const behind = (g: FileRecord): Decision =>
    sameOnDiskExactly(local, g) ? { kind: 'adopt', record: g } : { kind: 'apply', record: g, conflictCopy: false };
  const outdated = remotes.some((r) => compareVersions(local.version, r.version) === 'lesser');
  // Ours is concurrent with the winner but superseded by another record: it is simply old.
  if (all !== local && outdated && compareVersions(local.version, all.version) === 'concurrent') return behind(all);
  const global = all === local ? newestOf(remotes) : all;
  switch (compareVersions(local.version, global.version)) {
    case 'equal':
    case 'greater':
      return NONE;
    case 'lesser':
      return behind(global);
    case 'concurrent': {
      const winner = conflictWinner(local, global);
      const merged = { ...winner, version: mergeVersions(local.version, global.version) };
      // The same bytes written on two devices are not a conflict: both take the merged version.
      if (sameContent(local, global)) {
        return local.deleted || local.type === 'symlink' || local.mode === winner.mode ? { kind: 'adopt', record: merged } : { kind: 'apply', record: merged, conflictCopy: false };
      }
      if (winner === local) return NONE;
      const keepLocal = !local.deleted && local.type !== 'dir';
      return { kind: 'apply', record: merged, conflictCopy: keepLocal };
    }
  }
}

/**
 * The newest of several records of one path, whatever their order: of the records no other
 * record dominates, the conflict winner.
 */
export function newestOf(records: readonly FileRecord[]): FileRecord {
  const undominated = records.filter((r) => !records.some((o) => compareVersions(o.version, r.version) === 'greater'));
  return undominated.reduce((best, r) => conflictWinner(best, r));
}

/**
 * The deterministic winner of two concurrent versions, the same on every node: an existing
 * file beats a deletion, then the newer modification time, then the larger device ID, then
 * the larger content hash.
 */
export function conflictWinner(a: FileRecord, b: FileRecord): FileRecord {
  return conflictOrder(a, b) >= 0 ? a : b;
}

/** A total order on records (0 only for records identical in every compared field). */
function conflictOrder(a: FileRecord, b: FileRecord): number {
  if (a.deleted !== b.deleted) return a.deleted ? -1 : 1;
  if (a.mtimeMs !== b.mtimeMs) return a.mtimeMs > b.mtimeMs ? 1 : -1;
  if (a.modifiedBy !== b.modifiedBy) return a.modifiedBy > b.modifiedBy ? 1 : -1;
  const byContent = Buffer.compare(contentHash(a.blocks), contentHash(b.blocks));
  if (byContent !== 0) return byContent;
  if (a.type !== b.type) return a.type > b.type ? 1 : -1;
  if (a.mode !== b.mode) return a.mode > b.mode ? 1 : -1;
  if ((a.symlinkTarget ?? '') !== (b.symlinkTarget ?? '')) return (a.symlinkTarget ?? '') > (b.symlinkTarget ?? '') ? 1 : -1;
  const va = JSON.stringify(Object.entries(a.version).sort());
  const vb = JSON.stringify(Object.entries(b.version).sort());
  return va === vb ? 0 : va > vb ? 1 : -1;
}

function sameOnDiskExactly(a: FileRecord, b: FileRecord): boolean {
  if (!sameContent(a, b)) return false;
  if (a.deleted) return true;
  if (a.type === 'symlink') return true;
  return a.mode === b.mode && (a.type === 'dir' || a.mtimeMs === b.mtimeMs);
}
