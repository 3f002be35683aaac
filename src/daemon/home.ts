/**
 * Where a node keeps its state: the home directory (identity, index database, logs).
 * `--home`, else $FERRY_HOME, else the per-user config directory.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function resolveHome(explicit?: string): string {
  if (explicit) return resolve(explicit);
  if (process.env.FERRY_HOME) return resolve(process.env.FERRY_HOME);
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(config, 'ferry');
}

export const identityDir = (home: string) => join(home, 'identity');
export const databasePath = (home: string) => join(home, 'index.db');

/** The folder a fresh node shares by default. */
export function defaultFolderPath(): string {
  return process.env.FERRY_DEFAULT_FOLDER ? resolve(process.env.FERRY_DEFAULT_FOLDER) : join(homedir(), 'Ferry');
}
