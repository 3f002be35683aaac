/**
 * `ferry get` and `ferry put`: whole files over the REST API.
 *
 * A download goes to `NAME.ferry-part` beside its target, with `NAME.ferry-part.json` holding
 * the ETag it was started under; run again, it asks for the missing tail only (Range +
 * If-Range, so a file that changed on the node in between starts over). The whole file is
 * checked against the node's SHA-256 before it is renamed into place.
 *
 * An upload sends the file's SHA-256 with it (the node refuses bytes that do not match) and is
 * skipped when the node already has the same bytes at that path. A file the node mostly has
 * already (an edited version, a copy) goes as its missing blocks only. The node keeps the part
 * of an interrupted upload, whole-file or block-wise; run again, the upload continues after it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline, Readable, Transform } from 'node:stream';
import { chunkFile } from '../../chunker/chunk-file.js';
import { chunkParamsFor } from '../../chunker/fastcdc.js';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { checkRelativePath } from '../../core/paths.js';
import type { BlockCache } from './block-cache.js';
import { apiPath, readText, type RemoteClient } from './client.js';
import type { Progress } from './progress.js';
import { meter } from './progress.js';
import { RemoteError } from './remote-error.js';

export const PART_SUFFIX = '.ferry-part';

export interface RemoteEntry {
  readonly path: string;
  readonly name: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256?: string;
}

export interface Listing {
  readonly folder: string;
  readonly path: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly entries: RemoteEntry[];
}

export interface DownloadResult {
  readonly remote: string;
  readonly local: string;
  readonly size: number;
  /** Bytes received over the network this time. */
  readonly transferred: number;
  /** Bytes already present from an earlier, interrupted attempt. */
  readonly resumedFrom: number;
  /** Bytes taken from the local block cache. */
  readonly cachedBytes: number;
  readonly sha256: string;
}

export interface UploadResult {
  readonly local: string;
  readonly remote: string;
  readonly size: number;
  readonly transferred: number;
  /** Bytes the node kept from an earlier, interrupted upload. */
  readonly resumedFrom: number;
  /** Bytes the node built from blocks it already had (not sent). */
  readonly reusedBytes: number;
  readonly sha256: string;
  readonly skipped: boolean;
}

export interface TransferOptions {
  readonly progress: Progress;
  readonly limitRate?: number;
  /** Download: the local block cache (none: whole files, resumed byte-wise). */
  readonly cache?: BlockCache;
  /** Upload: the SHA-256 the (single) file must have, sent as claimed instead of computed. */
  readonly claimSha256?: string;
}

/** `FOLDER/path` → parts; the node checks the path, this only splits it. */
export function splitRemote(text: string): { folder: string; path: string } {
  const trimmed = text.replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  if (trimmed === '') throw new RemoteError('INVALID_PATH', 'a remote path is FOLDER_ID/path/inside');
  return slash < 0 ? { folder: trimmed, path: '' } : { folder: trimmed.slice(0, slash), path: trimmed.slice(slash + 1) };
}

export async function listRemote(client: RemoteClient, folder: string, path: string, query: Record<string, string | boolean | undefined> = {}): Promise<Listing> {
  return client.json<Listing>('GET', apiPath('files', folder, path), { query });
}

// ---- download ----------------------------------------------------------------------------

/** Downloads `folder/path` (a file or a whole directory) into the local directory `dir`. */
export async function download(client: RemoteClient, folder: string, path: string, dir: string, opts: TransferOptions): Promise<DownloadResult[]> {
  const listing = await listRemote(client, folder, path, { recursive: true });
  const top = path === '' ? folder : basename(path);
  const results: DownloadResult[] = [];
  if (listing.type !== 'dir') {
    const e = listing.entries[0]!;
    if (e.type !== 'file') throw new RemoteError('CONFLICT', `${folder}/${path} is a ${e.type}; only files and directories can be downloaded`);
    opts.progress.adjustTotal(e.size);
    results.push(await downloadFile(client, folder, path, join(dir, safeLocalName(top)), opts));
    return results;
  }
  const root = join(dir, safeLocalName(top));
  await mkdir(root, { recursive: true });
  const files = listing.entries.filter((e) => e.type === 'file');
  for (const e of files) opts.progress.adjustTotal(e.size);
  for (const e of listing.entries) {
    const rel = relativeTo(path, e.path);
    if (e.type === 'dir') await mkdir(join(root, ...rel.split('/')), { recursive: true });
  }
  for (const e of files) {
    const rel = relativeTo(path, e.path);
    const local = join(root, ...rel.split('/'));
    await mkdir(join(local, '..'), { recursive: true });
    results.push(await downloadFile(client, folder, e.path, local, opts));
  }
  return results;
}

/** A path from the node, checked before it names anything on this machine. */
function relativeTo(dir: string, path: string): string {
  const rel = dir === '' ? path : path.startsWith(dir + '/') ? path.slice(dir.length + 1) : '';
  try {
    return checkRelativePath(rel);
  } catch {
    throw new RemoteError('BAD_RESPONSE', `the node listed an unsafe path ${JSON.stringify(path)}; refusing to write it`);
  }
}

function safeLocalName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new RemoteError('INVALID_PATH', `cannot use ${JSON.stringify(name)} as a local name`);
  }
  return name;
}

export async function downloadFile(client: RemoteClient, folder: string, path: string, local: string, opts: TransferOptions): Promise<DownloadResult> {
  const part = local + PART_SUFFIX;
  const meta = part + '.json';
  let offset = 0;
  let etag: string | undefined;
  try {
    etag = (JSON.parse(await readFile(meta, 'utf8')) as { etag?: string }).etag;
    offset = (await stat(part)).size;
  } catch {
    offset = 0;
    etag = undefined;
  }
  opts.progress.file(`${folder}/${path}`);
  if (opts.cache && offset === 0) {
    const byBlocks = await downloadByBlocks(client, folder, path, local, opts.cache, opts);
    if (byBlocks) return byBlocks;
  }
  const headers: Record<string, string> = {};
  if (offset > 0 && etag) {
    headers.range = `bytes=${offset}-`;
    headers['if-range'] = etag;
  } else offset = 0;
  const res = await client.request('GET', apiPath('content', folder, path), {
    headers,
    accept: (s) => s === 200 || s === 206 || (s === 416 && offset > 0),
  });
  if (res.statusCode === 416) {
    // The partial file is as long as the remote one or longer: start over.
    res.resume();
    await rm(part, { force: true });
    await rm(meta, { force: true });
    return downloadFile(client, folder, path, local, opts);
  }
  const sha256 = String(res.headers['x-ferry-sha256'] ?? '');
  const size = Number(res.headers['x-ferry-size']);
  const mtimeMs = Number(res.headers['x-ferry-mtime']);
  if (!/^[0-9a-f]{64}$/.test(sha256) || !Number.isSafeInteger(size)) {
    res.resume();
    throw new RemoteError('BAD_RESPONSE', `the node sent ${folder}/${path} without its SHA-256 and size`);
  }
  const hash = createHash('sha256');
  if (res.statusCode === 200) {
    offset = 0;
    await writeFile(meta, JSON.stringify({ etag: res.headers.etag, size, sha256 }));
  } else {
    // Resuming: the bytes already here count towards the hash.
    for await (const chunk of createReadStream(part)) hash.update(chunk as Buffer);
    opts.progress.add(offset);
  }
  let transferred = 0;
  await pipelineAsync(
    res,
    meter((n) => {
      transferred += n;
      opts.progress.add(n);
    }, opts.limitRate),
    new Transform({
      highWaterMark: WRITE_BUFFER_BYTES,
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    // Chunks queue up while a write is under way and go to disk together.
    createWriteStream(part, { flags: offset > 0 ? 'a' : 'w', highWaterMark: WRITE_BUFFER_BYTES }),
  );
  const got = hash.digest('hex');
  const have = (await stat(part)).size;
  if (got !== sha256 || have !== size) {
    await rm(part, { force: true });
    await rm(meta, { force: true });
    throw new RemoteError('HASH_MISMATCH', `${folder}/${path}: the downloaded bytes (${have}, SHA-256 ${got.slice(0, 16)}…) do not match the node's (${size}, ${sha256.slice(0, 16)}…); discarded, try again`);
  }
  if (Number.isFinite(mtimeMs)) await utimes(part, new Date(), new Date(mtimeMs));
  await rename(part, local);
  await rm(meta, { force: true });
  if (opts.cache) await cacheBlocksOf(client, folder, path, local, opts.cache);
  return { remote: `${folder}/${path}`, local, size, transferred, resumedFrom: offset, cachedBytes: 0, sha256 };
}

interface BlockPlan {
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
  readonly etag: string;
  readonly blocks: { offset: number; size: number; hash: string }[];
}

async function blockPlan(client: RemoteClient, folder: string, path: string): Promise<BlockPlan | undefined> {
  try {
    return await client.json<BlockPlan>('GET', apiPath('blocks', folder, path));
  } catch (err) {
    // Not indexed yet, changed since it was indexed, or an older node: download it whole.
    if (err instanceof RemoteError && ['CONFLICT', 'NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(err.code)) return undefined;
    throw err;
  }
}

/** After a whole-file download: put its blocks in the cache, so the next download can use them. */
async function cacheBlocksOf(client: RemoteClient, folder: string, path: string, local: string, cache: BlockCache): Promise<void> {
  const plan = await blockPlan(client, folder, path).catch(() => undefined);
  if (!plan) return;
  const fh = await open(local, 'r');
  const stores = new BackgroundStores(cache);
  try {
    for (const b of plan.blocks) {
      const buf = Buffer.alloc(b.size);
      await fh.read(buf, 0, b.size, b.offset);
      if (createHash('sha256').update(buf).digest('hex') === b.hash) await stores.add(b.hash, buf);
    }
  } finally {
    await stores.done();
    await fh.close();
  }
}

/**
 * Blocks stored in the cache while a download goes on, at most CACHE_STORES at a time. The
 * cache is a convenience: a block that cannot be stored (a full disk) is simply not cached.
 */
class BackgroundStores {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly cache: BlockCache) {}

  async add(hash: string, data: Buffer): Promise<void> {
    while (this.inFlight.size >= CACHE_STORES) await Promise.race(this.inFlight);
    const store: Promise<void> = this.cache
      .put(hash, data)
      .catch(() => undefined)
      .finally(() => this.inFlight.delete(store));
    this.inFlight.add(store);
  }

  async done(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}

/**
 * Builds the file from cached blocks and fetches the others with Range requests (adjacent
 * blocks in one request), each block verified and cached as soon as it is complete, so an
 * interrupted download loses at most one block. Undefined when the node cannot give a block
 * list or the file changed meanwhile (then the caller downloads it whole).
 */
async function downloadByBlocks(client: RemoteClient, folder: string, path: string, local: string, cache: BlockCache, opts: TransferOptions): Promise<DownloadResult | undefined> {
  const plan = await blockPlan(client, folder, path);
  if (!plan) return undefined;
  const part = local + PART_SUFFIX;
  let transferred = 0;
  let cachedBytes = 0;
  const fh = await open(part, 'w');
  const stores = new BackgroundStores(cache);
  let ok = false;
  try {
    const missing: BlockPlan['blocks'] = [];
    for (const b of plan.blocks) {
      const data = cache.get(b.hash);
      if (data && data.length === b.size) {
        await fh.write(data, 0, data.length, b.offset);
        cachedBytes += b.size;
        opts.progress.add(b.size);
      } else missing.push(b);
    }
    for (const run of contiguousRuns(missing, MAX_RUN_BYTES)) {
      const start = run[0]!.offset;
      const last = run[run.length - 1]!;
      const res = await client.request('GET', apiPath('content', folder, path), {
        headers: { range: `bytes=${start}-${last.offset + last.size - 1}`, 'if-range': plan.etag },
        accept: (s) => s === 200 || s === 206,
      });
      if (res.statusCode !== 206) {
        res.destroy();
        return undefined;
      }
      let i = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const metered = res.pipe(
        meter((n) => {
          transferred += n;
          opts.progress.add(n);
        }, opts.limitRate),
      );
      for await (const chunk of metered) {
        pending.push(chunk as Buffer);
        pendingBytes += (chunk as Buffer).length;
        while (i < run.length && pendingBytes >= run[i]!.size) {
          const b = run[i]!;
          const all = Buffer.concat(pending);
          const data = all.subarray(0, b.size);
          if (createHash('sha256').update(data).digest('hex') !== b.hash) {
            throw new RemoteError('HASH_MISMATCH', `${folder}/${path}: the block at ${b.offset} does not match its hash`);
          }
          await fh.write(data, 0, data.length, b.offset);
          await stores.add(b.hash, data);
          pending = [all.subarray(b.size)];
          pendingBytes -= b.size;
          i++;
        }
      }
      if (i !== run.length) throw new RemoteError('BAD_RESPONSE', `${folder}/${path}: the node sent fewer bytes than asked for`);
    }
    ok = true;
  } finally {
    await stores.done();
    await fh.close();
    if (!ok) await rm(part, { force: true });
  }
  const got = await sha256OfFile(part);
  if (got !== plan.sha256 || (await stat(part)).size !== plan.size) {
    await rm(part, { force: true });
    throw new RemoteError('HASH_MISMATCH', `${folder}/${path}: the assembled file does not match the node's SHA-256; discarded, try again`);
  }
  await utimes(part, new Date(), new Date(plan.mtimeMs));
  await rename(part, local);
  return { remote: `${folder}/${path}`, local, size: plan.size, transferred, resumedFrom: 0, cachedBytes, sha256: plan.sha256 };
}

const MAX_RUN_BYTES = 8 * 1024 * 1024;
/** Blocks being stored in the cache at once, while the download goes on. */
const CACHE_STORES = 16;
/** Download data waiting to be written: Node's default (16 KiB) meant one small write at a time. */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Groups blocks whose byte ranges touch into runs of at most `maxBytes` (a bigger block is a run alone). */
export function contiguousRuns<T extends { offset: number; size: number }>(blocks: readonly T[], maxBytes: number): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let bytes = 0;
  for (const b of blocks) {
    const prev = run[run.length - 1];
    if (prev && (prev.offset + prev.size !== b.offset || bytes + b.size > maxBytes)) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(b);
    bytes += b.size;
  }
  if (run.length) runs.push(run);
  return runs;
}

// ---- upload ------------------------------------------------------------------------------

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Uploads a local file or directory into the remote directory `folder/dir`. */
export async function upload(client: RemoteClient, local: string, folder: string, dir: string, opts: TransferOptions): Promise<UploadResult[]> {
  const st = await lstat(local);
  const name = basename(local.replace(/[/\\]+$/, ''));
  const target = dir === '' ? name : `${dir}/${name}`;
  const files: { local: string; remote: string; size: number }[] = [];
  const emptyDirs: string[] = [];
  if (st.isFile()) files.push({ local, remote: target, size: st.size });
  else if (st.isDirectory()) await collect(local, target, files, emptyDirs);
  else throw new RemoteError('INVALID_PATH', `${local} is neither a file nor a directory`);
  if (opts.claimSha256 && files.length !== 1) throw new RemoteError('INVALID_REQUEST', '--sha256 applies to a single file');
  const existing = await remoteFiles(client, folder, target);
  for (const f of files) opts.progress.adjustTotal(f.size);
  const results: UploadResult[] = [];
  for (const f of files) results.push(await uploadFile(client, f.local, folder, f.remote, existing.get(f.remote), opts));
  // Directories with files in them came with their files; empty ones need asking for.
  for (const d of emptyDirs) await client.json('POST', apiPath('mkdir', folder, d));
  return results;
}

async function collect(abs: string, rel: string, out: { local: string; remote: string; size: number }[], emptyDirs: string[]): Promise<void> {
  const entries = await readdir(abs, { withFileTypes: true });
  if (entries.length === 0) emptyDirs.push(rel);
  for (const e of entries) {
    const a = join(abs, e.name);
    const r = `${rel}/${e.name}`;
    if (e.isDirectory()) await collect(a, r, out, emptyDirs);
    else if (e.isFile()) out.push({ local: a, remote: r, size: (await stat(a)).size });
    // Symlinks and special files are not uploaded (the node never follows links either).
  }
}

/** What the node already has under `path` (empty when nothing is there yet). */
async function remoteFiles(client: RemoteClient, folder: string, path: string): Promise<Map<string, RemoteEntry>> {
  try {
    const l = await listRemote(client, folder, path, { recursive: true });
    return new Map(l.entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
  } catch (err) {
    if (err instanceof RemoteError && err.code === 'NOT_FOUND') return new Map();
    throw err;
  }
}

async function uploadFile(client: RemoteClient, local: string, folder: string, remote: string, existing: RemoteEntry | undefined, opts: TransferOptions): Promise<UploadResult> {
  opts.progress.file(`${folder}/${remote}`);
  const st = await stat(local);
  const sha256 = opts.claimSha256 ?? (await sha256OfFile(local));
  if (existing && existing.size === st.size && !opts.claimSha256) {
    const remoteSha = existing.sha256 ?? (await client.json<{ sha256: string }>('GET', apiPath('hash', folder, remote))).sha256;
    if (remoteSha === sha256) {
      opts.progress.add(st.size);
      return { local, remote: `${folder}/${remote}`, size: st.size, transferred: 0, resumedFrom: 0, reusedBytes: 0, sha256, skipped: true };
    }
  }
  if (!opts.claimSha256 && st.size >= BLOCK_UPLOAD_MIN_BYTES) {
    const byBlocks = await uploadByBlocks(client, local, folder, remote, st.size, st.mtimeMs, sha256, opts);
    if (byBlocks) return byBlocks;
  }
  // An earlier attempt may have left part of the file on the node: send only the rest.
  let offset = 0;
  if (st.size > 0) {
    const held = await client.json<{ offset: number }>('GET', apiPath('uploads', folder, remote), { query: { sha256, size: String(st.size) } });
    if (held.offset > 0 && held.offset < st.size) offset = held.offset;
  }
  opts.progress.add(offset);
  let transferred = 0;
  const body = fileBody(local, offset, (n) => {
    transferred += n;
    opts.progress.add(n);
  }, opts.limitRate);
  const res = await client.request('PUT', apiPath('content', folder, remote), {
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': st.size - offset,
      'x-ferry-sha256': sha256,
      'x-ferry-mtime': String(st.mtimeMs),
      ...(offset > 0 ? { 'content-range': `bytes ${offset}-${st.size - 1}/${st.size}` } : {}),
    },
    body,
  });
  await readText(res);
  return { local, remote: `${folder}/${remote}`, size: st.size, transferred, resumedFrom: offset, reusedBytes: 0, sha256, skipped: false };
}

/** A file from `start` on as a metered upload body; destroying the body closes the file. */
function fileBody(file: string, start: number, onBytes: (n: number) => void, limitRate: number | undefined): Readable {
  return pipeline(createReadStream(file, { start }), meter(onBytes, limitRate), () => {
    // Errors reach the request through the returned stream.
  });
}

/** Files smaller than this are sent whole (one block, nothing to gain). */
const BLOCK_UPLOAD_MIN_BYTES = 1024 * 1024;

/**
 * Sends only the blocks the node lacks: chunks the file as the node would (with the average
 * block size of the version the node has, if any), asks for a plan, and sends the missing
 * blocks. The plan continues after the blocks an interrupted attempt left on the node
 * (`resumedFrom`). Undefined when most of the rest is new anyway (then the resumable
 * whole-file upload is the better choice) or when the node's copies changed meanwhile.
 */
async function uploadByBlocks(client: RemoteClient, local: string, folder: string, remote: string, size: number, mtimeMs: number, sha256: string, opts: TransferOptions): Promise<UploadResult | undefined> {
  let previousAvg: number | undefined;
  try {
    previousAvg = (await client.json<{ chunkAvg?: number }>('GET', apiPath('blocks', folder, remote))).chunkAvg || undefined;
  } catch {
    // No version on the node yet (or it is being changed): chunk for the size alone.
  }
  const avgSize = chunkParamsFor(size, previousAvg).avgSize;
  const chunks: { offset: number; size: number; hash: string }[] = [];
  for await (const c of chunkFile(local, { avgSize })) chunks.push({ offset: c.offset, size: c.size, hash: c.hash.toString('hex') });
  let plan: { plan: string; missing: number[]; missingBytes: number; resumedFrom?: number };
  try {
    plan = await client.json('POST', apiPath('upload-plan', folder, remote), { json: { size, sha256, blocks: chunks.map((c) => ({ hash: c.hash, size: c.size })) } });
  } catch (err) {
    if (err instanceof RemoteError && ['NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(err.code)) return undefined; // an older node
    throw err;
  }
  const resumedFrom = plan.resumedFrom ?? 0;
  if (plan.missingBytes > (size - resumedFrom) / 2) return undefined;
  const missing = plan.missing.map((i) => chunks[i]!);
  opts.progress.add(resumedFrom);
  let transferred = 0;
  const countSent = (n: number) => {
    transferred += n;
    opts.progress.add(n);
  };
  const body = Readable.from(
    (async function* () {
      for (const c of missing) if (c.size > 0) yield* createReadStream(local, { start: c.offset, end: c.offset + c.size - 1 });
    })(),
  ).pipe(meter(countSent, opts.limitRate));
  try {
    const res = await client.request('PUT', apiPath('content', folder, remote), {
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': plan.missingBytes,
        'x-ferry-plan': plan.plan,
        'x-ferry-sha256': sha256,
        'x-ferry-mtime': String(mtimeMs),
      },
      body,
    });
    await readText(res);
  } catch (err) {
    body.destroy();
    if (err instanceof RemoteError && err.code === 'CONFLICT') {
      opts.progress.add(-transferred - resumedFrom);
      return undefined;
    }
    throw err;
  }
  const reusedBytes = size - resumedFrom - plan.missingBytes;
  opts.progress.add(reusedBytes);
  return { local, remote: `${folder}/${remote}`, size, transferred, resumedFrom, reusedBytes, sha256, skipped: false };
}
