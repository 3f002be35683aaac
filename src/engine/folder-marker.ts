/**
 * The marker file `.ferry-folder` at a folder's root says "this is the folder, and it is there".
 * A folder that was synced before but has lost its marker (its disk not mounted, leaving an
 * empty mount point; its directory deleted and made again) would otherwise look as if the user
 * had deleted every file, and that deletion would reach every peer. Such a folder is neither
 * scanned nor pulled until the marker is back (Syncthing's `.stfolder` serves the same end).
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';

export const FOLDER_MARKER = '.ferry-folder';

const MARKER_TEXT =
  'This file marks a folder that Ferry syncs. If it goes missing, Ferry stops syncing the folder\n' +
  'rather than take the missing files for deleted ones. Leave it where it is.\n';

/**
 * Why the folder at `root` cannot be synced now, or undefined when it can. The marker of a
 * folder with nothing indexed yet (`everSynced` false) is created here.
 */
export function folderUnavailable(root: string, everSynced: () => boolean): string | undefined {
  const marker = join(root, FOLDER_MARKER);
  try {
    if (!statSync(root).isDirectory()) return `folder path ${root} is not a directory`;
  } catch (err) {
    return `folder path ${root} is not reachable (${errorMessage(err)}); if it is on a disk that is not mounted, mount it`;
  }
  try {
    if (statSync(marker, { throwIfNoEntry: false })) return undefined;
  } catch {
    // unreadable: as good as missing
  }
  if (everSynced()) {
    return (
      `${marker} is missing, so the folder is not synced: if its disk is not mounted, mount it; ` +
      `if the folder was emptied or made again on purpose, create the file (touch ${marker}) and ` +
      'Ferry will sync what it finds, deletions included'
    );
  }
  try {
    writeFileSync(marker, MARKER_TEXT, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return `cannot create ${marker}: ${errorMessage(err)}`;
  }
  return undefined;
}
