/**
 * The local block cache's size limit as set with `ferry cache limit SIZE`, kept in
 * `<home>/cache/settings.json` so that every later `ferry get` (and `ferry cache stats`) uses
 * it; `ferry get --cache-limit` overrides it for one run. Without a setting: DEFAULT_CACHE_LIMIT.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CACHE_LIMIT } from './block-cache.js';
import { RemoteError } from './remote-error.js';

export interface CacheLimit {
  readonly bytes: number;
  /** `set`: from `ferry cache limit`; `default`: nothing was set. */
  readonly source: 'set' | 'default';
}

function settingsFile(home: string): string {
  return join(home, 'cache', 'settings.json');
}

export function readCacheLimit(home: string): CacheLimit {
  let text: string;
  try {
    text = readFileSync(settingsFile(home), 'utf8');
  } catch {
    return { bytes: DEFAULT_CACHE_LIMIT, source: 'default' };
  }
  let limit: unknown;
  try {
    limit = (JSON.parse(text) as { limit?: unknown }).limit;
  } catch {
    limit = undefined;
  }
  if (!Number.isSafeInteger(limit) || (limit as number) < 0) {
    throw new RemoteError('INVALID_CONFIG', `${settingsFile(home)} holds no valid limit: set one with \`ferry cache limit SIZE\` or delete the file`);
  }
  return { bytes: limit as number, source: 'set' };
}

export function saveCacheLimit(home: string, bytes: number): void {
  const file = settingsFile(home);
  mkdirSync(join(home, 'cache'), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ limit: bytes }) + '\n');
  renameSync(tmp, file);
}
