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
 *
 * Resuming: the file is built in order into the same partial file a whole-file upload of this
 * content uses (upload.ts, named after user, folder, path, SHA-256 and size), and only whole,
 * verified blocks are written, so what an interrupted attempt left is a verified prefix of the
 * file. The next plan for the same content starts at the last block boundary within that
 * prefix (`resumedFrom`) and lists only the missing blocks after it. Plans themselves are cheap
 * and live in memory; what makes the upload resumable is on disk.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { FolderPaths } from '../engine/folder-paths.js';
import { ApiError } from './api-error.js';
import { readJsonBody, sendJson } from './http-io.js';
import { decodeUrlPath, parseRemotePath } from './remote-path.js';
import { acceptBody, accessTo, audit, requireFolder, type ApiServices, type RequestContext } from './request-context.js';
import { checkUploadable, claimPartial, commitUpload, partialName, releasePartial } from './upload.js';

const PLAN_TTL_MS = 60 * 60_000;
/** Plans kept at most (the oldest go first): a client that never uses its plans cannot fill memory. */
const MAX_PLANS = 256;
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
  /** The first block to build: the ones before it are in the partial file already. */
  readonly firstBlock: number;
  /** Where that block starts: the bytes of the partial file that are kept. */
  readonly resumedFrom: number;
  readonly missingBytes: number;
  readonly expires: number;
}

const plans = new Map<string, Plan>();

function dropExpired(now = Date.now()): void {
  for (const [id, p] of plans) if (p.expires <= now) plans.delete(id);
}

export async function planUpload(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'rw', 'upload', path);
  const body = await readJsonBody(ctx.req, 64 * 1024 * 1024);
  const { size, sha256, blocks } = body as { size?: unknown; sha256?: unknown; blocks?: unknown };
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw new ApiError('INVALID_REQUEST', 'size must be a whole number of bytes');
  if (typeof sha256 !== 'string' || !HEX64.test(sha256)) throw new ApiError('INVALID_REQUEST', 'sha256 must be 64 lowercase hexadecimal digits');
  if (!Array.isArray(blocks) || blocks.length > MAX_BLOCKS) throw new ApiError('INVALID_REQUEST', `blocks must be a list of at most ${MAX_BLOCKS}`);
  const sizes = blocks.map((b: unknown, i) => {
    const { hash, size: bs } = (b ?? {}) as { hash?: unknown; size?: unknown };
    if (typeof hash !== 'string' || !HEX64.test(hash) || !Number.isSafeInteger(bs) || (bs as number) <= 0 || (bs as number) > MAX_BLOCK_SIZE) {
      throw new ApiError('INVALID_REQUEST', `block ${i}: needs hash (64 hex digits) and size (1 … ${MAX_BLOCK_SIZE})`);
    }
    return bs as number;
  });
  const total = sizes.reduce((a, n) => a + n, 0);
  if (total !== size) throw new ApiError('INVALID_REQUEST', `the blocks add up to ${total} bytes, not ${size as number}`);

  // Continue after the whole blocks an earlier attempt left in the partial file.
  const held = (await stat(join(cfg.path, partialName(ctx.user!.name, folder, path, sha256, size))).catch(() => undefined))?.size ?? 0;
  let firstBlock = 0;
  let resumedFrom = 0;
  while (firstBlock < sizes.length && held <= size && resumedFrom + sizes[firstBlock]! <= held) resumedFrom += sizes[firstBlock++]!;
  await checkUploadable(services, cfg, path, size, size - resumedFrom);

  const readable = services.index.listFolders().map((f) => f.id).filter((id) => accessTo(ctx.user!, id));
  let missingBytes = 0;
  const missing: number[] = [];
  const list = (blocks as { hash: string }[]).map((b, i) => {
    const h = Buffer.from(b.hash, 'hex');
    const local = i < firstBlock || services.index.findBlock(h, 16).some((loc) => readable.includes(loc.folder));
    if (!local) {
      missing.push(i);
      missingBytes += sizes[i]!;
    }
    return { hash: h, size: sizes[i]!, local };
  });
  dropExpired();
  if (plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!);
  const id = randomBytes(16).toString('hex');
  plans.set(id, { user: ctx.user!.name, folder, path, size, sha256, blocks: list, firstBlock, resumedFrom, missingBytes, expires: Date.now() + PLAN_TTL_MS });
  sendJson(ctx.res, 200, { plan: id, missing, missingBytes, resumedFrom });
}

/** PUT /content/… with X-Ferry-Plan. */
export async function plannedUpload(ctx: RequestContext, services: ApiServices, rest: string): Promise<void> {
  const { folder, path } = parseRemotePath(decodeUrlPath(rest));
  const cfg = requireFolder(ctx, services, folder, 'rw', 'upload', path);
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
  const paths = await checkUploadable(services, cfg, path, plan.size, plan.size - plan.resumedFrom);

  const tmp = join(cfg.path, partialName(ctx.user!.name, folder, path, plan.sha256, plan.size));
  claimPartial(tmp, `${folder}/${path}`);
  const readable = services.index.listFolders().filter((f) => accessTo(ctx.user!, f.id));
  const whole = createHash('sha256');
  const body = new BlockReader(ctx.req);
  let out: FileHandle | undefined;
  let keepPartial = false;
  let committed = false;
  try {
    out = await openPartial(tmp, plan.resumedFrom, whole);
    acceptBody(ctx);
    let offset = plan.resumedFrom;
    for (const b of plan.blocks.slice(plan.firstBlock)) {
      const data = b.local ? await localBlock(services, readable, b.hash, b.size) : await body.take(b.size);
      if (!createHash('sha256').update(data).digest().equals(b.hash)) {
        if (!b.local) throw new ApiError('HASH_MISMATCH', `the block at ${offset} does not match its hash; nothing was changed`);
        // What was built so far is still a good prefix: a whole-file upload can continue it.
        keepPartial = true;
        throw new ApiError('CONFLICT', 'a block the node had changed meanwhile: send the whole file');
      }
      await out.write(data, 0, data.length, offset);
      whole.update(data);
      offset += b.size;
    }
    if (!(await body.atEnd())) throw new ApiError('INVALID_REQUEST', 'the body is longer than the missing blocks');
    await out.close();
    out = undefined;
    const sha256 = whole.digest('hex');
    if (sha256 !== plan.sha256) {
      audit(ctx, services, 'upload', folder, path, { ok: false, error: 'HASH_MISMATCH', detail: { size: plan.size } });
      throw new ApiError('HASH_MISMATCH', `the assembled file has SHA-256 ${sha256}, not the ${plan.sha256} planned; nothing was changed`);
    }
    const reusedBytes = plan.size - plan.resumedFrom - plan.missingBytes;
    committed = await commitUpload({
      ctx, services, cfg, paths, path, tmp, sha256, size: plan.size, mtimeMs,
      detail: { sentBytes: plan.missingBytes, reusedBytes, ...(plan.resumedFrom > 0 ? { resumedFrom: plan.resumedFrom } : {}) },
    });
  } catch (err) {
    // The client went away or sent less: the whole blocks written so far wait for the next attempt.
    if (body.interrupted) keepPartial = true;
    throw err;
  } finally {
    await body.stop();
    await out?.close().catch(() => undefined);
    releasePartial(tmp);
    if (!committed && !keepPartial) await rm(tmp, { force: true });
  }
}

/** Opens the partial file to build on, keeping its first `keep` bytes (and hashing them into `whole`). */
async function openPartial(tmp: string, keep: number, whole: Hash): Promise<FileHandle> {
  if (keep === 0) return open(tmp, 'w', 0o644);
  const fh = await open(tmp, 'r+').catch(() => undefined);
  if (!fh || (await fh.stat()).size < keep) {
    await fh?.close();
    throw new ApiError('CONFLICT', 'the partial upload this plan continues is gone: ask for a new plan');
  }
  try {
    await fh.truncate(keep);
    const buf = Buffer.allocUnsafe(Math.min(keep, 4 * 1024 * 1024));
    for (let pos = 0; pos < keep; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, keep - pos), pos);
      if (bytesRead === 0) throw new ApiError('CONFLICT', 'the partial upload this plan continues changed: ask for a new plan');
      whole.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Reads a request body in pieces of given sizes (the missing blocks), one copy per block, and
 * notes whether the client went away or sent less than it announced.
 */
class BlockReader {
  /** Whether the body ended, or the connection broke, before the blocks were all there. */
  interrupted = false;
  private readonly chunks: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(req: IncomingMessage) {
    // Stopping early must not destroy the request: the answer still goes out on its connection.
    this.chunks = req.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  }

  async take(n: number): Promise<Buffer> {
    while (this.pendingBytes < n) {
      let next: IteratorResult<Buffer>;
      try {
        next = await this.chunks.next();
      } catch (err) {
        this.interrupted = true;
        throw new ApiError('INVALID_REQUEST', 'the upload was interrupted', { cause: err });
      }
      if (next.done) {
        this.interrupted = true;
        throw new ApiError('INVALID_REQUEST', 'the upload was cut short');
      }
      this.pending.push(next.value);
      this.pendingBytes += next.value.length;
    }
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = all.length > n ? [all.subarray(n)] : [];
    this.pendingBytes -= n;
    return all.subarray(0, n);
  }

  /** True when nothing follows the blocks taken. */
  async atEnd(): Promise<boolean> {
    return this.pendingBytes === 0 && (await this.chunks.next()).done === true;
  }

  /** Lets go of the request, so the rest of a refused body can be drained. */
  async stop(): Promise<void> {
    await this.chunks.return?.().catch(() => undefined);
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
