/**
 * Uploads: PUT /content/{folder}/{path}, and GET /uploads/{folder}/{path}?sha256&size, which
 * says how much of an interrupted upload the node kept.
 *
 * The body goes to a temporary file in the folder's root (`.ferry.tmp.upload-*`: Ferry's own
 * names are never scanned, listed or synced), counted against Content-Length, and is checked
 * against the X-Ferry-SHA256 the client claims; fsync, then an atomic rename over the target.
 * So a bad upload changes nothing visible: missing parent directories are created only once the
 * bytes checked out. A replaced file keeps its old bytes (a hard link, taken before the rename,
 * moves to the version area). Then the folder's engine is told, which indexes the file and
 * announces it to the folder's peers.
 *
 * Resuming: when the client claims a SHA-256, the temporary file has a name derived from (user,
 * folder, path, SHA-256, size) and survives an interrupted request, so the client can ask for
 * its length and send the rest with `Content-Range: bytes START-END/TOTAL`. Such partial files
 * are removed after PARTIAL_MAX_AGE_MS without activity, and at once when the whole file does
 * not match its hash. Without a claimed hash, an interrupted upload is simply discarded.
 *
 * Refusals come before the body: the checks that need none (checkUploadable; GET /uploads makes
 * them too) run first, and a client that sent `Expect: 100-continue` is asked for its body only
 * after them. A disk that fills up during the upload fails it with 507 and removes the
 * temporary file.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { diskSpace } from '../core/disk-space.js';
import { FolderPaths } from '../engine/folder-paths.js';
import { Versioner } from '../engine/versioner.js';
import type { FolderConfig } from '../index-store/config-types.js';
import { ApiError } from './api-error.js';
import { sendJson } from './http-io.js';
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { acceptBody, audit, requireFolder, type ApiServices, type RequestContext } from './request-context.js';

export const UPLOAD_TMP_PREFIX = '.ferry.tmp.upload-';
/**
 * How much of a request body may wait to be written. With Node's default (16 KiB) the file
 * got one small write at a time, each a trip through the thread pool: a 1 GiB `ferry put` took
 * 10.2–11.7 s on the dev VM, 7.4–8.5 s with 1 MiB (4 MiB was no faster).
 */
const BODY_BUFFER_BYTES = 1024 * 1024;
export const PARTIAL_MAX_AGE_MS = 24 * 3600_000;
const SHA256_HEX = /^[0-9a-f]{64}$/i;
const DEFAULT_MAX_UPLOAD = 1024 ** 4;

/** Temporary files being written right now (see claimPartial). */
const busy = new Set<string>();

interface ContentRange {
  readonly start: number;
  readonly end: number;
  readonly total: number;
}

export function parseContentRange(text: string | undefined): ContentRange | undefined {
  if (text === undefined) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new ApiError('INVALID_REQUEST', 'Content-Range must be "bytes START-END/TOTAL"');
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!(start <= end && end < total) || !Number.isSafeInteger(total)) throw new ApiError('INVALID_REQUEST', `Content-Range ${text} is not a valid range`);
  return { start, end, total };
}

/**
 * The partial file of an upload of this content (by this user, to this path): a prefix of the
 * file, shared by whole-file and block uploads, so either can continue what the other began.
 */
export function partialName(user: string, folder: string, path: string, sha256: string, size: number): string {
  const id = createHash('sha256').update(`${user}\0${folder}\0${path}\0${sha256.toLowerCase()}\0${size}`).digest('hex').slice(0, 32);
  return `${UPLOAD_TMP_PREFIX}${id}.part`;
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export async function uploadOffset(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'rw', 'upload', path);
  const sha256 = ctx.url.searchParams.get('sha256') ?? '';
  const size = Number(ctx.url.searchParams.get('size'));
  if (!SHA256_HEX.test(sha256) || !Number.isSafeInteger(size) || size < 0) throw new ApiError('INVALID_REQUEST', 'give sha256 (64 hex digits) and size (bytes)');
  const st = await stat(join(cfg.path, partialName(ctx.user!.name, folder, path, sha256, size))).catch(() => undefined);
  const offset = st && st.size <= size ? st.size : 0;
  // The checks the upload itself will make, so a client learns a refusal before sending anything.
  await checkUploadable(services, cfg, path, size, size - offset);
  sendJson(ctx.res, 200, { folder, path, offset });
}

export async function upload(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'rw', 'upload', path);
  const req = ctx.req;
  const expectedSha = headerText(req.headers['x-ferry-sha256'])?.toLowerCase();
  if (expectedSha !== undefined && !SHA256_HEX.test(expectedSha)) throw new ApiError('INVALID_REQUEST', 'X-Ferry-SHA256 must be 64 hexadecimal digits');
  const mtimeText = headerText(req.headers['x-ferry-mtime']);
  const mtimeMs = mtimeText === undefined ? undefined : Number(mtimeText);
  if (mtimeMs !== undefined && !(Number.isFinite(mtimeMs) && mtimeMs >= 0)) throw new ApiError('INVALID_REQUEST', 'X-Ferry-Mtime must be milliseconds since the epoch');
  const lengthText = headerText(req.headers['content-length']);
  const declared = lengthText === undefined ? undefined : Number(lengthText);
  if (declared === undefined) throw new ApiError('INVALID_REQUEST', 'an upload needs Content-Length');
  const range = parseContentRange(headerText(req.headers['content-range']));
  if (range) {
    if (!expectedSha) throw new ApiError('INVALID_REQUEST', 'a resumed upload (Content-Range) needs X-Ferry-SHA256');
    if (range.end !== range.total - 1) throw new ApiError('INVALID_REQUEST', 'a resumed upload sends the rest of the file (Content-Range must end at the last byte)');
    if (declared !== range.end - range.start + 1) throw new ApiError('INVALID_REQUEST', 'Content-Length does not match Content-Range');
  }
  const start = range?.start ?? 0;
  const total = range?.total ?? declared;
  const paths = await checkUploadable(services, cfg, path, total, declared);

  const resumable = expectedSha !== undefined;
  const tmp = join(cfg.path, resumable ? partialName(ctx.user!.name, folder, path, expectedSha, total) : `${UPLOAD_TMP_PREFIX}${randomBytes(8).toString('hex')}`);
  claimPartial(tmp, `${folder}/${path}`);
  // A partial file is kept only when the client went away (or sent less than it announced),
  // so the upload can resume; any other failure (a bad hash, a full disk) discards it.
  let keepPartial = false;
  let committed = false;
  try {
    const hash = createHash('sha256');
    if (start > 0) {
      const have = (await stat(tmp).catch(() => undefined))?.size ?? 0;
      if (have !== start) {
        keepPartial = resumable;
        throw new ApiError('CONFLICT', `the node holds ${have} bytes of this upload, not ${start}: ask GET /api/v1/uploads/… for the offset`, { headers: { 'x-ferry-offset': String(have) } });
      }
      for await (const chunk of createReadStream(tmp)) hash.update(chunk as Buffer);
    }
    acceptBody(ctx);
    const flags = start > 0 ? 'a' : resumable ? 'w' : 'wx';
    const { received, interrupted } = await receiveBody(req, tmp, flags, declared, hash);
    if (interrupted || received !== declared) {
      keepPartial = resumable;
      throw new ApiError('INVALID_REQUEST', `the upload was ${interrupted ? 'interrupted' : 'cut short'} after ${received} of ${declared} bytes`);
    }
    const sha256 = hash.digest('hex');
    if (expectedSha !== undefined && sha256 !== expectedSha) {
      audit(ctx, services, 'upload', folder, path, { ok: false, error: 'HASH_MISMATCH', detail: { size: total } });
      throw new ApiError('HASH_MISMATCH', `the uploaded bytes have SHA-256 ${sha256}, not the ${expectedSha} claimed in X-Ferry-SHA256; nothing was changed`);
    }
    committed = await commitUpload({ ctx, services, cfg, paths, path, tmp, sha256, size: total, mtimeMs, detail: start > 0 ? { resumedFrom: start } : {} });
  } finally {
    releasePartial(tmp);
    if (!committed && !keepPartial) await rm(tmp, { force: true });
  }
}

/**
 * Streams a request body into `file`, hashing it and counting it against `declared`. Resolves
 * with the bytes received and whether the client went away first. A failure to write (a full
 * disk) rejects and leaves the rest of the body unread, so the caller can still answer: the
 * request is not destroyed with the file stream.
 */
async function receiveBody(req: IncomingMessage, file: string, flags: string, declared: number, hash: Hash): Promise<{ received: number; interrupted: boolean }> {
  let received = 0;
  let interrupted = false;
  const counter = new Transform({
    highWaterMark: BODY_BUFFER_BYTES,
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (received > declared) return done(new ApiError('TOO_LARGE', 'the body is larger than its Content-Length'));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const gone = () => {
    interrupted = true;
    counter.destroy(new ApiError('INVALID_REQUEST', 'the upload was interrupted'));
  };
  req.once('aborted', gone);
  req.once('error', gone);
  req.pipe(counter);
  try {
    await pipeline(counter, createWriteStream(file, { flags, mode: 0o644, highWaterMark: BODY_BUFFER_BYTES }));
  } catch (err) {
    if (!interrupted) {
      req.unpipe(counter);
      throw err;
    }
  } finally {
    req.off('aborted', gone);
    req.off('error', gone);
  }
  return { received, interrupted };
}

/** Marks a partial upload file as written by this request: one request per file at a time (else CONFLICT). */
export function claimPartial(tmp: string, what: string): void {
  if (busy.has(tmp)) throw new ApiError('CONFLICT', `an upload of ${what} with these bytes is already running`);
  busy.add(tmp);
}

export function releasePartial(tmp: string): void {
  busy.delete(tmp);
}

export interface CommitArgs {
  readonly ctx: RequestContext;
  readonly services: ApiServices;
  readonly cfg: FolderConfig;
  readonly paths: FolderPaths;
  readonly path: string;
  /** The verified temporary file (in the folder's root). */
  readonly tmp: string;
  readonly sha256: string;
  readonly size: number;
  readonly mtimeMs: number | undefined;
  /** Extra facts for the audit entry and the response. */
  readonly detail: Record<string, unknown>;
}

/**
 * Puts a verified temporary file in place: fsync, mtime, parents, the old version to the
 * version area, atomic rename; then the SHA-256 cache, the audit log, the engine, the answer.
 * Returns true once the rename happened.
 */
export async function commitUpload(a: CommitArgs): Promise<boolean> {
  const { ctx, services, cfg, paths, path, tmp, sha256, size } = a;
  const folder = cfg.id;
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (a.mtimeMs !== undefined) await utimes(tmp, new Date(), new Date(a.mtimeMs));
  // Parents are created only now that the upload is known to be good.
  const abs = paths.resolve(path, { createParents: true });
  const existing = await lstat(abs).catch(() => undefined);
  if (existing && !existing.isFile()) throw new ApiError('CONFLICT', `${folder}/${path} exists and is not a regular file`);
  let previous: string | undefined;
  if (existing) {
    // Keep the old bytes: a hard link survives the atomic rename and then moves to the
    // version area, so readers never see the name missing.
    previous = join(cfg.path, `${UPLOAD_TMP_PREFIX}${randomBytes(8).toString('hex')}.prev`);
    await link(abs, previous);
  }
  await rename(tmp, abs);
  if (previous) new Versioner(cfg.path, cfg.versionsKeepDays).archive(previous, path);
  const st = await lstat(abs);
  services.access.putSha256(folder, path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, sha256);
  audit(ctx, services, 'upload', folder, path, { detail: { size, sha256, replaced: !!existing, ...a.detail } });
  await tellEngine(services, folder, [path]);
  sendJson(ctx.res, existing ? 200 : 201, { folder, path, size, sha256, mtimeMs: st.mtimeMs, replaced: !!existing, resumedFrom: 0, ...a.detail });
  return true;
}

/**
 * What an upload of `size` bytes to `path` must pass before its body is read: a running folder,
 * the node's size limit, a target that can be a file, and free space for the `toCome` bytes
 * still to arrive. Returns the folder's paths.
 */
export async function checkUploadable(services: ApiServices, cfg: FolderConfig, path: string, size: number, toCome: number): Promise<FolderPaths> {
  if (!services.options.folderSync(cfg.id)) throw new ApiError('UNAVAILABLE', `folder ${cfg.id} is not running on this node`);
  const maxBytes = services.options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD;
  if (size > maxBytes) throw new ApiError('TOO_LARGE', `the upload (${size} bytes) is larger than this node accepts (${maxBytes} bytes)`);
  const paths = new FolderPaths(cfg.path);
  await checkUploadTarget(paths, cfg, path);
  // The same rule as sync's downloads: 1 % of the disk stays free (the node's index needs it too).
  const { available, keep } = diskSpace(cfg.path);
  if (toCome > available - keep) {
    throw new ApiError('INSUFFICIENT_STORAGE', `not enough free space on the node for ${toCome} bytes (${available} free, of which the node leaves ${keep} free)`);
  }
  return paths;
}

/** Refuses an upload whose target is a directory, a symlink or under a non-directory. */
export async function checkUploadTarget(paths: FolderPaths, cfg: FolderConfig, path: string): Promise<void> {
  try {
    const abs = paths.resolve(path);
    const st = await lstat(abs).catch(() => undefined);
    if (st && !st.isFile()) throw new ApiError('CONFLICT', `${cfg.id}/${path} exists and is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`);
  } catch (err) {
    // A missing parent is fine (it is created after the upload); anything else is not.
    if ((err as { code?: string }).code === 'NOT_FOUND') return;
    if ((err as { code?: string }).code === 'INVALID_PATH') throw new ApiError('CONFLICT', (err as Error).message);
    throw err;
  }
}

/** Has the engine index (and announce) the paths; waits a bounded time so a listing right after sees them. */
export async function tellEngine(services: ApiServices, folder: string, paths: string[]): Promise<void> {
  const sync = services.options.folderSync(folder);
  if (!sync) return;
  sync.localChanged(paths);
  const waitMs = services.options.indexWaitMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([sync.settle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
  clearTimeout(timer);
  await services.refreshSearch();
}

/** Removes temporary upload files untouched for longer than `maxAgeMs`; returns how many. */
export async function pruneStaleUploads(root: string, maxAgeMs = PARTIAL_MAX_AGE_MS, now = Date.now()): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(UPLOAD_TMP_PREFIX)) continue;
    const abs = join(root, name);
    if (busy.has(abs)) continue;
    const st = await lstat(abs).catch(() => undefined);
    if (st?.isFile() && now - st.mtimeMs > maxAgeMs) {
      await rm(abs, { force: true });
      removed++;
    }
  }
  return removed;
}
