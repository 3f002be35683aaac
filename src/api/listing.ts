/**
 * Listing filters, pure: which index entries a `GET /files` request returns. Type filters are
 * an extension (`txt`, `.txt`) or a glob on the name (`*.jp*g`, `report-??.pdf`); time filters
 * bound the modification time (since inclusive, until exclusive).
 */
import { ApiError } from './api-error.js';

export interface ListFilter {
  readonly recursive: boolean;
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly type?: string;
}

export interface ListedEntry {
  /** Folder-relative path. */
  readonly path: string;
  readonly name: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly size: number;
  readonly mtimeMs: number;
}

/** A name matcher for a type filter, or throws INVALID_REQUEST. */
export function typeMatcher(type: string): (name: string) => boolean {
  const t = type.trim();
  if (t === '' || t.length > 200 || t.includes('/')) throw new ApiError('INVALID_REQUEST', `invalid type filter ${JSON.stringify(type)}`);
  if (/[*?[]/.test(t)) {
    const re = globToRegExp(t);
    return (name) => re.test(name);
  }
  const ext = (t.startsWith('.') ? t : '.' + t).toLowerCase();
  return (name) => name.toLowerCase().endsWith(ext) && name.length > ext.length;
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

/** Whether `entry` (under directory `dir`, '' for the root) passes the filter. */
export function matchesFilter(entry: ListedEntry, dir: string, filter: ListFilter, matchType?: (name: string) => boolean): boolean {
  const rel = dir === '' ? entry.path : entry.path.slice(dir.length + 1);
  if (!filter.recursive && rel.includes('/')) return false;
  if (matchType && (entry.type === 'dir' || !matchType(entry.name))) return false;
  if (filter.sinceMs !== undefined && entry.mtimeMs < filter.sinceMs) return false;
  if (filter.untilMs !== undefined && entry.mtimeMs >= filter.untilMs) return false;
  return true;
}
