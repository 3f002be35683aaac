/**
 * Folder-relative paths: '/'-separated, Unicode NFC, never absolute, never with '.', '..',
 * empty components or NUL. Every path that comes from a peer, a user or the disk passes
 * through `checkRelativePath` before Ferry touches the filesystem with it.
 */
import { sep } from 'node:path';
import { FerryError } from './errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/** Names reserved for Ferry's own files inside a folder (temp files, versions, markers). */
export const INTERNAL_PREFIX = '.ferry';

/** Returns the canonical (NFC) form of a valid relative path, or throws INVALID_PATH. */
export function checkRelativePath(path: unknown): string {
  if (typeof path !== 'string') throw invalid(String(path), 'not a string');
  if (path.length === 0) throw invalid(path, 'empty');
  if (path.includes('\0')) throw invalid(path, 'contains a NUL byte');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) throw invalid(path, 'absolute');
  if (path.includes('\\')) throw invalid(path, 'contains a backslash');
  const nfc = path.normalize('NFC');
  if (Buffer.byteLength(nfc) > MAX_PATH_BYTES) throw invalid(path, `longer than ${MAX_PATH_BYTES} bytes`);
  for (const part of nfc.split('/')) {
    if (part === '') throw invalid(path, 'empty component');
    if (part === '.' || part === '..') throw invalid(path, `contains '${part}'`);
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) throw invalid(path, `a name is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return nfc;
}

export function isValidRelativePath(path: unknown): boolean {
  try {
    checkRelativePath(path);
    return true;
  } catch {
    return false;
  }
}

/** True when any component of the path is one of Ferry's own names. */
export function isInternalPath(path: string): boolean {
  return path.split('/').some((part) => part.startsWith(INTERNAL_PREFIX));
}

export function parentPath(path: string): string | undefined {
  const i = path.lastIndexOf('/');
  return i < 0 ? undefined : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Number of components: 'a/b/c' has depth 3. */
export function pathDepth(path: string): number {
  let depth = 1;
  for (const c of path) if (c === '/') depth++;
  return depth;
}

function invalid(path: string, why: string): FerryError {
  return new FerryError('INVALID_PATH', `invalid path ${JSON.stringify(path.slice(0, 200))}: ${why}`, { data: { path } });
}

/** Whether the absolute local path `path` lies strictly under the directory `dir`. */
export function isInsideDir(path: string, dir: string): boolean {
  const prefix = dir.endsWith(sep) ? dir : dir + sep;
  return path.length > prefix.length && path.startsWith(prefix);
}
