/**
 * What the parts of one folder's sync (scanner, puller, block server) share: the folder's
 * identity and root, the index, the local device, a logger and the ignore rules.
 */
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import type { FolderPaths } from './folder-paths.js';
import type { IgnoreRules } from './ignore-rules.js';
import type { Versioner } from './versioner.js';

export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface FolderContext {
  readonly folderId: string;
  readonly root: string;
  readonly store: SqliteIndexStore;
  /** This device's short ID, as used in version vectors. */
  readonly shortId: string;
  readonly paths: FolderPaths;
  readonly versioner: Versioner;
  readonly logger: Logger;
  ignore: IgnoreRules;
}
