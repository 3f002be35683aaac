/**
 * Whole-file SHA-256 of a folder's files, as `ferry hash`, `ferry verify` and downloads use it.
 * The index names content by its blocks (contentHash over block hashes, which depends on the
 * chunk size a file happened to get); a client can check a plain SHA-256 with any tool, so
 * that is what the API promises. Sums are cached by stat (size, mtime, inode) in the database,
 * so a file is read once per change, not once per request.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { AccessStore } from '../index-store/access-store.js';

export async function sha256OfHandle(fh: FileHandle, size: number): Promise<string> {
  const h = createHash('sha256');
  if (size > 0) {
    const stream = createReadStream('', { fd: fh.fd, start: 0, end: size - 1, autoClose: false });
    for await (const chunk of stream) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

export async function cachedSha256(access: AccessStore, folder: string, path: string, fh: FileHandle, st: Stats): Promise<string> {
  const key = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  const cached = access.cachedSha256(folder, path, key);
  if (cached) return cached;
  const sum = await sha256OfHandle(fh, st.size);
  // Only cache when the file did not change while it was read.
  const after = await fh.stat();
  if (after.size === st.size && after.mtimeMs === st.mtimeMs) access.putSha256(folder, path, key, sum);
  return sum;
}

/** The ETag of a file's content (downloads, If-Range, the block list). */
export function etagFor(sha256: string): string {
  return `"sha256-${sha256}"`;
}
