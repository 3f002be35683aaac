/**
 * Names of conflict copies: `report.sync-conflict-20261121-143005-ABCDEF1.txt`. The time is
 * the losing version's modification time (UTC) and the device is the one that made it, so
 * every node that resolves the same conflict picks the same name.
 */
import type { FileRecord } from '../core/file-record.js';

export const CONFLICT_MARKER = '.sync-conflict-';

export function conflictCopyPath(loser: FileRecord): string {
  const slash = loser.path.lastIndexOf('/');
  const dir = loser.path.slice(0, slash + 1);
  const name = loser.path.slice(slash + 1);
  const dot = name.lastIndexOf('.');
  const hasExt = dot > 0 && dot < name.length - 1;
  const stem = hasExt ? name.slice(0, dot) : name;
  const ext = hasExt ? name.slice(dot) : '';
  const stamp = new Date(loser.mtimeMs).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${dir}${stem}${CONFLICT_MARKER}${stamp}-${loser.modifiedBy}${ext}`;
}

export function isConflictCopy(path: string): boolean {
  return path.includes(CONFLICT_MARKER);
}
