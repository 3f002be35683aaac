/**
 * Names of conflict copies: `report.sync-conflict-20261121-143005-ABCDEF1.txt`. The time is
 * the losing version's modification time (UTC) and the device is the one that made it, so
 * every node that resolves the same conflict picks the same name.
 */
import type { FileRecord } from '../core/file-record.js';
import { MAX_NAME_BYTES } from '../core/paths.js';

export const CONFLICT_MARKER = '.sync-conflict-';

export function conflictCopyPath(loser: FileRecord): string {
  const slash = loser.path.lastIndexOf('/');
  const dir = loser.path.slice(0, slash + 1);
  const name = loser.path.slice(slash + 1);
  const dot = name.lastIndexOf('.');
  const hasExt = dot > 0 && dot < name.length - 1;
  let stem = hasExt ? name.slice(0, dot) : name;
  const ext = hasExt ? name.slice(dot) : '';
  const date = new Date(Number.isFinite(loser.mtimeMs) && Math.abs(loser.mtimeMs) <= 8.64e15 ? loser.mtimeMs : 0);
  const stamp = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  // The device part is untrusted text from a record: keep only what a device ID may contain.
  const device = loser.modifiedBy.replace(/[^A-Za-z0-9]/g, '').slice(0, 16) || 'unknown';
  const suffix = `${CONFLICT_MARKER}${stamp}-${device}${ext}`;
  while (Buffer.byteLength(stem + suffix) > MAX_NAME_BYTES && stem.length > 1) stem = stem.slice(0, -1);
  return `${dir}${stem}${suffix}`;
}

export function isConflictCopy(path: string): boolean {
  return path.includes(CONFLICT_MARKER);
}
