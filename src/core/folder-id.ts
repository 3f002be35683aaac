/** Folder IDs: the name a folder is shared under, the same on every device that shares it. */
import { FerryError } from './errors.js';

const FOLDER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isFolderId(text: string): boolean {
  return FOLDER_ID.test(text);
}

/** The ID itself, or INVALID_CONFIG saying what a folder ID may hold. */
export function checkFolderId(text: string): string {
  if (!isFolderId(text)) {
    throw new FerryError('INVALID_CONFIG', `invalid folder ID ${JSON.stringify(text)}: use letters, digits, '.', '_' or '-' (at most 64)`);
  }
  return text;
}
