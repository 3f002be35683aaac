/**
 * Remote paths as the API and CLI write them: `FOLDER_ID/path/inside`. The folder part is a
 * folder ID, the rest a folder-relative path checked by checkRelativePath; Ferry's own names
 * (`.ferry*`) are never reachable. URL-encoded segments are decoded exactly once.
 */
import { FerryError } from '../core/errors.js';
import { checkRelativePath, isInternalPath } from '../core/paths.js';
import { ApiError, toApiError } from './api-error.js';

export const FOLDER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface RemotePath {
  readonly folder: string;
  /** Folder-relative path in NFC, or '' for the folder's root. */
  readonly path: string;
}

/** Parses `FOLDER[/path]` (already decoded); throws INVALID_PATH (an ApiError). */
export function parseRemotePath(text: string, opts: { allowRoot?: boolean } = {}): RemotePath {
  const slash = text.indexOf('/');
  const folder = slash < 0 ? text : text.slice(0, slash);
  let rest = slash < 0 ? '' : text.slice(slash + 1);
  if (!FOLDER_ID.test(folder)) throw new ApiError('INVALID_PATH', `invalid folder ID ${JSON.stringify(folder.slice(0, 100))}`);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (rest === '') {
    if (opts.allowRoot) return { folder, path: '' };
    throw new ApiError('INVALID_PATH', `${folder}: a path inside the folder is needed`);
  }
  return { folder, path: checkInnerPath(rest) };
}

/** checkRelativePath plus the rule that Ferry's own files are off limits. */
export function checkInnerPath(path: string): string {
  let checked: string;
  try {
    checked = checkRelativePath(path);
  } catch (err) {
    throw toApiError(err);
  }
  if (isInternalPath(checked)) throw toApiError(new FerryError('INVALID_PATH', `invalid path ${JSON.stringify(path.slice(0, 200))}: names starting with .ferry are reserved`));
  return checked;
}

/** Decodes the percent-encoded tail of a URL path (after the route prefix). */
export function decodeUrlPath(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new ApiError('INVALID_PATH', 'the path is not valid percent-encoded UTF-8');
  }
}

/** Encodes `FOLDER/path` for a URL, segment by segment. */
export function encodeRemotePath(folder: string, path: string): string {
  return [folder, ...(path ? path.split('/') : [])].map(encodeURIComponent).join('/');
}
