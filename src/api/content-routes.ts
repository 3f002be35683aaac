/**
 * File content: GET/HEAD /content/{folder}/{path} downloads (one HTTP Range, with If-Range on
 * the SHA-256 ETag, so an interrupted download resumes), PUT uploads (see upload.ts), DELETE
 * removes. A deleted file goes to the folder's version area, as a file deleted by a peer does;
 * then the engine is told, which indexes the change and announces it to the folder's peers.
 */
import { constants, createReadStream } from 'node:fs';
import { lstat, open, readdir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FolderPaths } from '../engine/folder-paths.js';
import { Versioner } from '../engine/versioner.js';
import { ApiError } from './api-error.js';
import { cachedSha256, etagFor } from './file-sha256.js';
import { sendJson } from './http-io.js';
import { parseRange } from './range.js';

/** Reads of a download: 1 MiB at a time instead of Node's 64 KiB, fewer trips through the thread pool. */
const READ_BUFFER_BYTES = 1024 * 1024;
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { audit, flag, requireFolder, type ApiServices, type RequestContext, type Route } from './request-context.js';
import { tellEngine, upload, uploadOffset } from './upload.js';
import { plannedUpload, planUpload } from './block-upload.js';

const AUDIT_DEDUP_MS = 10 * 60_000;
const recentDownloads = new Map<string, number>();

/** True unless `key` was seen within AUDIT_DEDUP_MS (and notes it now). */
function firstRecently(key: string, now = Date.now()): boolean {
  const seen = recentDownloads.get(key);
  recentDownloads.delete(key);
  recentDownloads.set(key, now);
  if (recentDownloads.size > 10_000) {
    for (const [k, t] of recentDownloads) {
      if (now - t < AUDIT_DEDUP_MS) break;
      recentDownloads.delete(k);
    }
  }
  return seen === undefined || now - seen >= AUDIT_DEDUP_MS;
}

export const contentRoutes: Route[] = [
  { method: ['GET', 'HEAD'], path: 'content/', handler: download },
  { method: 'PUT', path: 'content/', checksBeforeBody: true, handler: (ctx, services, rest) => (ctx.req.headers['x-ferry-plan'] ? plannedUpload(ctx, services, rest) : upload(ctx, services, rest)) },
  { method: 'POST', path: 'upload-plan/', handler: planUpload },
  { method: 'GET', path: 'uploads/', handler: uploadOffset },
  { method: 'DELETE', path: 'content/', handler: remove },
];

async function download(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'ro', 'download', path);
  const abs = new FolderPaths(cfg.path).resolve(path);
  const st = await lstat(abs);
  if (!st.isFile()) throw new ApiError('CONFLICT', `${folder}/${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}: only files can be downloaded`);
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  let handedOver = false;
  try {
    const fst = await fh.stat();
    const sha256 = await cachedSha256(services.access, folder, path, fh, fst);
    const etag = etagFor(sha256);
    const ifRange = ctx.req.headers['if-range'];
    const range = ifRange === undefined || ifRange === etag ? parseRange(headerText(ctx.req.headers.range), fst.size) : undefined;
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag,
      'x-ferry-sha256': sha256,
      'x-ferry-size': fst.size,
      'x-ferry-mtime': String(fst.mtimeMs),
      'last-modified': fst.mtime.toUTCString(),
      'cache-control': 'no-store',
    };
    const start = range?.start ?? 0;
    const end = range?.end ?? fst.size - 1;
    headers['content-length'] = Math.max(0, end - start + 1);
    if (range) headers['content-range'] = `bytes ${start}-${end}/${fst.size}`;
    // One download is often many requests (a resume, or the missing blocks of a cached file):
    // it is audited once per user and content within AUDIT_DEDUP_MS.
    if (ctx.req.method === 'GET' && firstRecently(`${ctx.user!.name}\0${folder}\0${path}\0${sha256}`)) {
      audit(ctx, services, 'download', folder, path, { detail: { size: fst.size, sha256, ...(range ? { from: start } : {}) } });
    }
    ctx.res.writeHead(range ? 206 : 200, headers);
    if (ctx.req.method === 'HEAD' || end < start) {
      ctx.res.end();
      return;
    }
    const stream = createReadStream('', { fd: fh.fd, start, end, autoClose: false, highWaterMark: READ_BUFFER_BYTES });
    handedOver = true;
    try {
      await pipeline(stream, ctx.res);
    } catch {
      // The client went away mid-download: nothing to clean up on the node.
    } finally {
      await fh.close();
    }
  } finally {
    if (!handedOver) await fh.close();
  }
}

async function remove(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'rw', 'delete', path);
  if (!services.options.folderSync(folder)) throw new ApiError('UNAVAILABLE', `folder ${folder} is not running on this node`);
  const abs = new FolderPaths(cfg.path).resolve(path);
  const st = await lstat(abs);
  const versioner = new Versioner(cfg.path, cfg.versionsKeepDays);
  let files = 0;
  if (st.isDirectory()) {
    const recursive = flag(ctx.url, 'recursive');
    if (!recursive && (await readdir(abs)).length > 0) {
      throw new ApiError('CONFLICT', `${folder}/${path} is a directory that is not empty (delete it recursively)`);
    }
    files = await removeTree(abs, path, versioner);
  } else {
    if (st.isFile()) versioner.archive(abs, path);
    else await unlink(abs);
    files = 1;
  }
  services.access.forgetSha256(folder, path);
  audit(ctx, services, 'delete', folder, path, { detail: { type: st.isDirectory() ? 'dir' : 'file', files } });
  await tellEngine(services, folder, [path]);
  sendJson(ctx.res, 200, { folder, path, deleted: true, files });
}

/** Moves every file under a directory to the version area, then removes the directories. */
async function removeTree(abs: string, rel: string, versioner: Versioner): Promise<number> {
  let files = 0;
  for (const e of await readdir(abs, { withFileTypes: true })) {
    const a = join(abs, e.name);
    const r = `${rel}/${e.name}`;
    if (e.isDirectory()) files += await removeTree(a, r, versioner);
    else if (e.isFile()) {
      versioner.archive(a, r);
      files++;
    } else await unlink(a);
  }
  await rmdir(abs);
  return files;
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

