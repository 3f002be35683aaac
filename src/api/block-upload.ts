/**
 * Uploads that send only the blocks the node lacks.
 *
 * POST /upload-plan/{folder}/{path} `{size, sha256, blocks: [{hash, size}]}`: the client chunks
 * its file (FastCDC, as the node does) and the node answers which blocks it cannot find in its
 * block map, looking only in folders the user may read (so the answer reveals nothing about
 * other folders). The plan is kept in memory for PLAN_TTL_MS.
 *
 * PUT /content/{folder}/{path} with `X-Ferry-Plan: ID`: the body is the missing blocks, in file
 * order. The node builds the file in a temporary file from its own copies of the other blocks
 * (read from wherever the block map finds them, each verified against its hash) and the blocks
 * sent (each verified too), checks the whole file's SHA-256, and then commits it like any
 * upload. A local block that changed meanwhile fails the upload with CONFLICT, and the client
 * sends the whole file instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { FolderPaths } from '../engine/folder-paths.js';
import { ApiError } from './api-error.js';
import { readJsonBody, sendJson } from './http-io.js';
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { accessTo, audit, requireFolder, type ApiServices, type RequestContext } from './request-context.js';
import { checkUploadTarget, commitUpload, UPLOAD_TMP_PREFIX } from './upload.js';

const PLAN_TTL_MS = 60 * 60_000;
const MAX_BLOCKS = 1_000_000;
const MAX_BLOCK_SIZE = 64 * 1024 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

interface Plan {
  readonly user: string;
  readonly folder: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly blocks: { hash: Buffer; size: number; local: boolean }[];
  readonly missingBytes: number;
  readonly expires: number;
}

const plans = new Map<string, Plan>();

function dropExpired(now = Date.now()): void {
  for (const [id, p] of plans) if (p.expires <= now) plans.delete(id);
}

export async function planUpload(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  requireFolder(ctx, services, folder, 'rw', 'upload', path);
  const body = await readJsonBody(ctx.req, 64 * 1024 * 1024);
  const { size, sha256, blocks } = body as { size?: unknown; sha256?: unknown; blocks?: unknown };
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw new ApiError('INVALID_REQUEST', 'size must be a whole number of bytes');
  if (typeof sha256 !== 'string' || !HEX64.test(sha256)) throw new ApiError('INVALID_REQUEST', 'sha256 must be 64 lowercase hexadecimal digits');
  if (!Array.isArray(blocks) || blocks.length > MAX_BLOCKS) throw new ApiError('INVALID_REQUEST', `blocks must be a list of at most ${MAX_BLOCKS}`);
  const readable = services.index.listFolders().map((f) => f.id).filter((id) => accessTo(ctx.user!, id));
  let total = 0;
  let missingBytes = 0;
  const missing: number[] = [];
  const list = blocks.map((b: unknown, i) => {
    const { hash, size: bs } = (b ?? {}) as { hash?: unknown; size?: unknown };
    if (typeof hash !== 'string' || !HEX64.test(hash) || !Number.isSafeInteger(bs) || (bs as number) <= 0 || (bs as number) > MAX_BLOCK_SIZE) {
      throw new ApiError('INVALID_REQUEST', `block ${i}: needs hash (64 hex digits) and size (1 … ${MAX_BLOCK_SIZE})`);
    }
    total += bs as number;
    const h = Buffer.from(hash, 'hex');
    const local = services.index.findBlock(h, 16).some((loc) => readable.includes(loc.folder));
    if (!local) {
      missing.push(i);
      missingBytes += bs as number;
    }
    return { hash: h, size: bs as number, local };
  });
  if (total !== size) throw new ApiError('INVALID_REQUEST', `the blocks add up to ${total} bytes, not ${size as number}`);
  dropExpired();
  const id = randomBytes(16).toString('hex');
  plans.set(id, { user: ctx.user!.name, folder, path, size, sha256, blocks: list, missingBytes, expires: Date.now() + PLAN_TTL_MS });
  sendJson(ctx.res, 200, { plan: id, missing, missingBytes });
}

/** PUT /content/… with X-Ferry-Plan. */
export async function plannedUpload(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'rw', 'upload', path);
  if (!services.options.folderSync(folder)) throw new ApiError('UNAVAILABLE', `folder ${folder} is not running on this node`);
  const id = String(ctx.req.headers['x-ferry-plan']);
  dropExpired();
  const plan = plans.get(id);
  if (!plan || plan.user !== ctx.user!.name || plan.folder !== folder || plan.path !== path) {
    throw new ApiError('NOT_FOUND', 'no such upload plan (expired, used, or for another file): ask POST /api/v1/upload-plan/… again');
  }
  plans.delete(id);
  const declared = Number(ctx.req.headers['content-length']);
  if (declared !== plan.missingBytes) throw new ApiError('INVALID_REQUEST', `the body must be the ${plan.missingBytes} bytes of the missing blocks, not ${declared}`);
  const mtimeText = ctx.req.headers['x-ferry-mtime'];
  const mtimeMs = typeof mtimeText === 'string' ? Number(mtimeText) : undefined;
  if (mtimeMs !== undefined && !(Number.isFinite(mtimeMs) && mtimeMs >= 0)) throw new ApiError('INVALID_REQUEST', 'X-Ferry-Mtime must be milliseconds since the epoch');
  const maxBytes = services.options.maxUploadBytes ?? 1024 ** 4;
  if (plan.size > maxBytes) throw new ApiError('TOO_LARGE', `the upload (${plan.size} bytes) is larger than this node accepts (${maxBytes} bytes)`);
  const paths = new FolderPaths(cfg.path);
  await checkUploadTarget(paths, cfg, path);
  const fs = await statfs(cfg.path);
  if (plan.size > fs.bavail * fs.bsize) throw new ApiError('INSUFFICIENT_STORAGE', `not enough free space on the node for ${plan.size} bytes`);

  const tmp = join(cfg.path, `${UPLOAD_TMP_PREFIX}${randomBytes(8).toString('hex')}`);
  const body = ctx.req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buffered: Buffer = Buffer.alloc(0);
  const take = async (n: number): Promise<Buffer> => {
    while (buffered.length < n) {
      const next = await body.next();
      if (next.done) throw new ApiError('INVALID_REQUEST', 'the upload was cut short');
      buffered = buffered.length ? Buffer.concat([buffered, next.value]) : next.value;
    }
    const out = buffered.subarray(0, n);
    buffered = buffered.subarray(n);
    return out;
  };
  const readable = services.index.listFolders().filter((f) => accessTo(ctx.user!, f.id));
  const out = await open(tmp, 'wx', 0o644);
  const whole = createHash('sha256');
  let offset = 0;
  let committed = false;
  try {
    for (const b of plan.blocks) {
      const data = b.local ? await localBlock(services, readable, b.hash, b.size) : await take(b.size);
      if (!createHash('sha256').update(data).digest().equals(b.hash)) {
        throw b.local
          ? new ApiError('CONFLICT', 'a block the node had changed meanwhile: send the whole file')
          : new ApiError('HASH_MISMATCH', `the block at ${offset} does not match its hash; nothing was changed`);
      }
      await out.write(data, 0, data.length, offset);
      whole.update(data);
      offset += b.size;
    }
    if (buffered.length > 0 || !(await body.next()).done) throw new ApiError('INVALID_REQUEST', 'the body is longer than the missing blocks');
    await out.close();
    const sha256 = whole.digest('hex');
    if (sha256 !== plan.sha256) {
      audit(ctx, services, 'upload', folder, path, { ok: false, error: 'HASH_MISMATCH', detail: { size: plan.size } });
      throw new ApiError('HASH_MISMATCH', `the assembled file has SHA-256 ${sha256}, not the ${plan.sha256} planned; nothing was changed`);
    }
    committed = await commitUpload({
      ctx, services, cfg, paths, path, tmp, sha256, size: plan.size, mtimeMs,
      detail: { sentBytes: plan.missingBytes, reusedBytes: plan.size - plan.missingBytes },
    });
  } catch (err) {
    // Read the rest of the body, so the client gets the answer instead of a reset connection.
    if (!ctx.req.destroyed) while (!(await body.next().catch(() => ({ done: true }))).done);
    throw err;
  } finally {
    await out.close().catch(() => undefined);
    if (!committed) await rm(tmp, { force: true });
  }
}

/** A block's bytes from any readable folder that has it (unverified: the caller checks). */
async function localBlock(services: ApiServices, folders: { id: string; path: string }[], hash: Buffer, size: number): Promise<Buffer> {
  for (const loc of services.index.findBlock(hash, 16)) {
    const f = folders.find((x) => x.id === loc.folder);
    if (!f || loc.size !== size) continue;
    try {
      const fh = await open(new FolderPaths(f.path).resolve(loc.path), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const buf = Buffer.alloc(size);
        const { bytesRead } = await fh.read(buf, 0, size, loc.offset);
        if (bytesRead === size && createHash('sha256').update(buf).digest().equals(hash)) return buf;
      } finally {
        await fh.close();
      }
    } catch {
      // try the next copy
    }
  }
  return Buffer.alloc(0);
}
