/**
 * The peer protocol's messages. Every message header has a `type`; index records travel in the
 * payload (JSON record list followed by the packed block lists) so the transport compresses
 * them. Everything decoded from a peer is validated here: a bad record is rejected with a
 * clear INVALID_MESSAGE error and never reaches the engine.
 */
import { FerryError, errorMessage } from '../core/errors.js';
import type { FileRecord, FileType } from '../core/file-record.js';
import { checkRelativePath, isInternalPath } from '../core/paths.js';
import { isValidVersionVector, type VersionVector } from '../core/version-vector.js';
import { PACKED_BLOCK_BYTES, packBlocks, unpackBlocks } from '../index-store/block-codec.js';

export const PROTOCOL_VERSION = 1;
/** Largest block a peer may ask for or send. */
export const MAX_BLOCK_BYTES = 16 * 1024 * 1024;
/** Most records in one index message. */
export const MAX_RECORDS_PER_MESSAGE = 5000;
/** Largest time a JavaScript Date can hold, in ms. */
const MAX_TIME_MS = 8.64e15;

export interface HelloFolder {
  readonly id: string;
  /** The sender's index ID and highest sequence for this folder. */
  readonly indexId: string;
  readonly maxSequence: number;
  /** What the sender already has of the receiver's index. */
  readonly haveIndexId: string;
  readonly haveSequence: number;
}

export interface Hello {
  readonly type: 'hello';
  readonly protocol: number;
  readonly name: string;
  readonly folders: readonly HelloFolder[];
  /** The most bytes a second the sender sends (its --max-send-rate); 0 when unlimited. */
  readonly sendRate: number;
}

export interface BlockRequest {
  readonly type: 'block';
  readonly folder: string;
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  readonly hash: string;
}

/** Consecutive blocks of one file starting at `offset`, asked for in one request. */
export interface RangeRequest {
  readonly type: 'range';
  readonly folder: string;
  readonly path: string;
  readonly offset: number;
  readonly blocks: readonly { readonly size: number; readonly hash: string }[];
}

/** Most blocks in one range request; their total is also capped at MAX_BLOCK_BYTES. */
export const MAX_RANGE_BLOCKS = 64;

/**
 * Ranges of several files in one request: what a pull of many small files asks for, so that
 * each file does not cost a request and a reply of its own (and a round trip on a slow link).
 * The reply's payload is the ranges served, in order; `sizes` gives each one's length, -1 for a
 * range not served, with its error in `errors` under the same index.
 */
export interface RangesRequest {
  readonly type: 'ranges';
  readonly folder: string;
  readonly items: readonly RangeRequest[];
}

export interface RangesReply {
  readonly sizes: readonly number[];
  readonly errors: Readonly<Record<string, { code: string; message: string }>>;
}

/** Most ranges in one ranges request; their total is also capped at MAX_BLOCK_BYTES. */
export const MAX_BATCH_RANGES = 64;

export function parseRangesRequest(header: Record<string, unknown>): RangesRequest {
  const items = header.items;
  if (!Array.isArray(items) || items.length < 1 || items.length > MAX_BATCH_RANGES) {
    throw invalid(`ranges: items must be a list of 1 to ${MAX_BATCH_RANGES}`);
  }
  const folder = str(header.folder, 'ranges.folder', 256);
  const parsed = items.map((item: Record<string, unknown>) => parseRangeRequest({ ...item, folder }));
  const total = parsed.reduce((n, r) => n + r.blocks.reduce((m, b) => m + b.size, 0), 0);
  if (total > MAX_BLOCK_BYTES) throw invalid(`ranges of ${total} bytes in all are larger than ${MAX_BLOCK_BYTES}`);
  return { type: 'ranges', folder, items: parsed };
}

/** Checks a ranges reply against the request it answers and the payload it came with. */
export function parseRangesReply(header: Record<string, unknown>, request: readonly { size: number }[], payloadBytes: number): RangesReply {
  const sizes = header.sizes;
  if (!Array.isArray(sizes) || sizes.length !== request.length) throw invalid('ranges reply: one size per range asked for');
  let total = 0;
  sizes.forEach((n, i) => {
    if (n !== -1 && n !== request[i]!.size) throw invalid(`ranges reply: range ${i} has ${String(n)} bytes, ${request[i]!.size} were asked for`);
    if (n > 0) total += n;
  });
  if (total !== payloadBytes) throw invalid(`ranges reply: sizes add up to ${total} bytes, the payload has ${payloadBytes}`);
  const errors: Record<string, { code: string; message: string }> = {};
  const raw = (header.errors ?? {}) as Record<string, Record<string, unknown>>;
  sizes.forEach((n, i) => {
    if (n !== -1) return;
    const e = raw[i] ?? {};
    errors[i] = { code: str(e.code ?? 'NOT_FOUND', 'ranges.code', 64), message: str(e.message ?? 'not served', 'ranges.message', 1024) };
  });
  return { sizes, errors };
}

export function parseRangeRequest(header: Record<string, unknown>): RangeRequest {
  const blocks = header.blocks;
  if (!Array.isArray(blocks) || blocks.length < 1 || blocks.length > MAX_RANGE_BLOCKS) {
    throw invalid(`range: blocks must be a list of 1 to ${MAX_RANGE_BLOCKS}`);
  }
  let total = 0;
  const parsed = blocks.map((b: Record<string, unknown>) => {
    const size = int(b?.size, 'range.size');
    const hash = str(b.hash, 'range.hash', 64);
    if (size < 1 || !/^[0-9a-f]{64}$/.test(hash)) throw invalid('range: each block needs a positive size and a 64-hex-digit hash');
    total += size;
    return { size, hash };
  });
  if (total > MAX_BLOCK_BYTES) throw invalid(`range of ${total} bytes is larger than ${MAX_BLOCK_BYTES}`);
  return {
    type: 'range',
    folder: str(header.folder, 'range.folder', 256),
    path: checkRelativePath(header.path),
    offset: int(header.offset, 'range.offset'),
    blocks: parsed,
  };
}

export function parseHello(header: Record<string, unknown>): Hello {
  const folders = header.folders;
  if (!Array.isArray(folders) || folders.length > 10_000) throw invalid('hello: folders must be a list');
  return {
    type: 'hello',
    protocol: int(header.protocol, 'hello.protocol'),
    name: str(header.name ?? '', 'hello.name', 256),
    sendRate: int(header.sendRate ?? 0, 'hello.sendRate'),
    folders: folders.map((f: Record<string, unknown>) => ({
      id: str(f?.id, 'hello.folder.id', 256),
      indexId: str(f.indexId, 'hello.folder.indexId', 64),
      maxSequence: int(f.maxSequence, 'hello.folder.maxSequence'),
      haveIndexId: str(f.haveIndexId ?? '', 'hello.folder.haveIndexId', 64),
      haveSequence: int(f.haveSequence ?? 0, 'hello.folder.haveSequence'),
    })),
  };
}

export function parseBlockRequest(header: Record<string, unknown>): BlockRequest {
  const size = int(header.size, 'block.size');
  if (size < 1 || size > MAX_BLOCK_BYTES) throw invalid(`block size ${size} out of range`);
  const hash = str(header.hash, 'block.hash', 64);
  if (!/^[0-9a-f]{64}$/.test(hash)) throw invalid('block hash must be 64 hex digits');
  return {
    type: 'block',
    folder: str(header.folder, 'block.folder', 256),
    path: checkRelativePath(header.path),
    offset: int(header.offset, 'block.offset'),
    size,
    hash,
  };
}

/** Encodes records for an index message payload: u32 JSON length, JSON, packed blocks. */
export function encodeRecords(records: readonly FileRecord[]): Buffer {
  const json = Buffer.from(JSON.stringify(records.map(recordMeta)));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(json.length);
  return Buffer.concat([head, json, ...records.map((r) => packBlocks(r.blocks))]);
}

/** A record's JSON part in an index message (its block list travels packed, after the JSON). */
export function recordMeta(r: FileRecord): Record<string, unknown> {
  return {
    path: r.path,
    type: r.type,
    size: r.size,
    mtimeMs: r.mtimeMs,
    mode: r.mode,
    deleted: r.deleted,
    version: r.version,
    modifiedBy: r.modifiedBy,
    sequence: r.sequence,
    blocks: r.blocks.length,
    ...(r.symlinkTarget === undefined ? {} : { symlinkTarget: r.symlinkTarget }),
  };
}

export interface DecodedRecords {
  readonly records: FileRecord[];
  /** Records that failed validation, with the reason; the rest of the message is still used. */
  readonly rejected: { path: string; reason: string }[];
}

export function decodeRecords(payload: Buffer | undefined): DecodedRecords {
  if (!payload || payload.length < 4) throw invalid('index message without records');
  const jsonLength = payload.readUInt32BE(0);
  if (4 + jsonLength > payload.length) throw invalid('index message truncated');
  let meta: unknown;
  try {
    meta = JSON.parse(payload.subarray(4, 4 + jsonLength).toString('utf8'));
  } catch (err) {
    throw invalid(`index records are not JSON: ${errorMessage(err)}`);
  }
  if (!Array.isArray(meta) || meta.length > MAX_RECORDS_PER_MESSAGE) throw invalid('index records must be a list of at most 5000');
  let at = 4 + jsonLength;
  const records: FileRecord[] = [];
  const rejected: { path: string; reason: string }[] = [];
  for (const m of meta as Record<string, unknown>[]) {
    const count = Number.isSafeInteger(m?.blocks) ? (m.blocks as number) : -1;
    if (count < 0 || at + count * PACKED_BLOCK_BYTES > payload.length) throw invalid('index message block lists truncated');
    const packed = payload.subarray(at, at + count * PACKED_BLOCK_BYTES);
    at += count * PACKED_BLOCK_BYTES;
    try {
      records.push(validateRecord(m, unpackBlocks(packed)));
    } catch (err) {
      rejected.push({ path: String(m?.path).slice(0, 200), reason: errorMessage(err) });
    }
  }
  if (at !== payload.length) throw invalid('index message has trailing bytes');
  return { records, rejected };
}

function validateRecord(m: Record<string, unknown>, blocks: FileRecord['blocks']): FileRecord {
  const path = checkRelativePath(m.path);
  if (path !== m.path) throw invalid(`path ${JSON.stringify(m.path)} is not in NFC form`);
  if (isInternalPath(path)) throw invalid(`path ${path} uses a name reserved for Ferry`);
  const type = m.type;
  if (type !== 'file' && type !== 'dir' && type !== 'symlink') throw invalid(`unknown type ${String(type)}`);
  const deleted = m.deleted === true;
  const size = int(m.size, 'size');
  const mtimeMs = m.mtimeMs;
  if (typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs) || Math.abs(mtimeMs) > MAX_TIME_MS) {
    throw invalid('mtimeMs must be a time within the range of a date');
  }
  const mode = int(m.mode, 'mode');
  if (mode > 0o7777) throw invalid(`mode ${mode} out of range`);
  if (!isValidVersionVector(m.version) || Object.keys(m.version).length === 0) throw invalid('invalid version vector');
  const sequence = int(m.sequence, 'sequence');
  if (sequence < 1) throw invalid('sequence must be positive');
  const modifiedBy = str(m.modifiedBy, 'modifiedBy', 64);
  if (!/^[A-Z2-7]{7}$/.test(modifiedBy)) throw invalid(`modifiedBy ${JSON.stringify(modifiedBy.slice(0, 20))} is not a short device ID`);
  let total = 0;
  for (const b of blocks) {
    if (b.size < 1 || b.size > MAX_BLOCK_BYTES) throw invalid(`block of ${b.size} bytes out of range`);
    total += b.size;
  }
  if (type === 'file' && !deleted && total !== size) throw invalid(`blocks add up to ${total} bytes, size says ${size}`);
  if ((type !== 'file' || deleted) && blocks.length > 0) throw invalid(`a ${deleted ? 'deleted entry' : type} has no blocks`);
  const record: FileRecord = {
    path,
    type: type as FileType,
    size,
    mtimeMs,
    mode,
    deleted,
    version: m.version as VersionVector,
    modifiedBy,
    sequence,
    blocks,
  };
  if (type === 'symlink') {
    const target = str(m.symlinkTarget ?? '', 'symlinkTarget', 4096);
    if (!deleted && (target === '' || target.includes('\0'))) throw invalid('symlink target must be non-empty and without NUL');
    return { ...record, symlinkTarget: target };
  }
  return record;
}

function int(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw invalid(`${what} must be a non-negative integer`);
  return v as number;
}

function str(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length > max || v.includes('\0')) throw invalid(`${what} must be a string of at most ${max} characters`);
  return v;
}

function invalid(message: string): FerryError {
  return new FerryError('INVALID_MESSAGE', message);
}
