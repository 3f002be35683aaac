/**
 * The peer protocol's wire frame: one binary WebSocket message carries one frame,
 *
 *   [u8 flags][u32 BE header length][header: JSON, UTF-8][payload bytes]
 *
 * flags bit 0: the payload is zstd-compressed (a single frame that declares its content size);
 * flags bit 1: a payload is present (so an empty payload and no payload stay distinct).
 * Other bits must be zero, so a later version can use them without being misread.
 *
 * Limits hold for the frame *as if uncompressed* (5 + header + payload ≤ MAX_FRAME_BYTES),
 * on both sides: a sender cannot produce a frame the receiver would refuse, and a receiver
 * never allocates more than the limit however well a payload compresses (zip bombs).
 * Compression is zstd level 1 and is kept only when it saves at least 10 %.
 */
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { FerryError, errorMessage } from '../core/errors.js';
import { takeHeadroom } from '../protocol/payload.js';

export const MAX_FRAME_BYTES = 24 * 1024 * 1024;
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
/** Payloads smaller than this are never compressed: the saving cannot pay for the CPU. */
export const MIN_COMPRESS_BYTES = 1024;
/**
 * Payloads this large are probed with three 4 KiB samples before a full compression attempt.
 * Measured (zstd 1.5.7, level 1, random data): a full attempt costs ~40 µs at 256 KiB,
 * ~170 µs at 1 MiB and ~3.8 ms at 16 MiB (5-6 GB/s); the probe costs ~15 µs whatever the size.
 * Sending 1 MiB over TLS costs ~2 ms of CPU, so the full attempt would add ~8 % to every
 * incompressible block and the probe under 1 %. Below 256 KiB the probe does not pay.
 */
export const SAMPLE_PROBE_MIN_BYTES = 256 * 1024;

const FLAG_COMPRESSED = 1;
const FLAG_HAS_PAYLOAD = 2;
const KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_HAS_PAYLOAD;
const PREFIX_BYTES = 5;
const ZSTD_LEVEL = 1;
/** Compressed output must be below this share of the original to be worth sending. */
const KEEP_RATIO = 0.9;
const SAMPLE_BYTES = 4096;
const SMALL_PAYLOAD_BYTES = 16 * 1024;
const ATTEMPT_SCRATCH_BYTES = 2 * 1024 * 1024;
/** A sample compressing to more than this share marks the payload as likely incompressible. */
const SAMPLE_SKIP_RATIO = 0.97;

// The native binding gives what the high-level API lacks: compressing into a caller's buffer
// (no copy) and decompressing into a buffer of a size we choose (bounded).
const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding;
let cctx: ZstdBinding.CCtx | undefined;
let dctx: ZstdBinding.DCtx | undefined;
let sampleScratch: Buffer | undefined;
let attemptScratch: Buffer | undefined;

export interface DecodedFrame {
  readonly header: Record<string, unknown>;
  readonly payload?: Buffer;
  /** True when the payload travelled compressed. */
  readonly compressed: boolean;
}

export interface EncodeOptions {
  /** false: send the payload as is (already-compressed or encrypted data). Default: when it pays. */
  readonly compress?: boolean;
}

/** Encodes one frame into one buffer; MESSAGE_TOO_LARGE when it would exceed the limits. */
export function encodeFrame(header: Record<string, unknown>, payload?: Buffer, options: EncodeOptions = {}): Buffer {
  const parts = encodeFrameParts(header, payload, options);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Encodes one frame as consecutive parts whose concatenation is the frame. An uncompressed
 * payload is returned as its own part, not copied, so the caller can write it as a second
 * WebSocket fragment of the same message.
 */
export function encodeFrameParts(header: Record<string, unknown>, payload?: Buffer, options: EncodeOptions = {}): Buffer[] {
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  if (headerBytes.length > MAX_HEADER_BYTES) {
    throw new FerryError('MESSAGE_TOO_LARGE', `frame header is ${headerBytes.length} bytes, more than the limit of ${MAX_HEADER_BYTES}`);
  }
  const payloadLength = payload?.length ?? 0;
  const rawLength = PREFIX_BYTES + headerBytes.length + payloadLength;
  if (rawLength > MAX_FRAME_BYTES) {
    throw new FerryError('MESSAGE_TOO_LARGE', `frame is ${rawLength} bytes, more than the limit of ${MAX_FRAME_BYTES}`);
  }
  if (payload === undefined) return [prefixed(0, headerBytes)];
  if (options.compress !== false && worthTrying(payload)) {
    const start = PREFIX_BYTES + headerBytes.length;
    const bound = start + zstd.compressBound(payload.length);
    // A fresh buffer for every attempt costs more than the attempt itself (page faults, GC:
    // 43 µs against 16 µs at 128 KiB), so attempts up to 2 MiB go to a reused scratch buffer.
    const reuse = bound <= ATTEMPT_SCRATCH_BYTES;
    const out = reuse ? (attemptScratch ??= Buffer.allocUnsafe(ATTEMPT_SCRATCH_BYTES)) : Buffer.allocUnsafe(bound);
    const size = compressor().compress(out.subarray(start, bound), payload, ZSTD_LEVEL);
    if (size < payload.length * KEEP_RATIO) {
      writePrefix(out, FLAG_HAS_PAYLOAD | FLAG_COMPRESSED, headerBytes);
      const frame = out.subarray(0, start + size);
      return [reuse ? Buffer.from(frame) : frame];
    }
  }
  const headLength = PREFIX_BYTES + headerBytes.length;
  if (takeHeadroom(payload, headLength)) {
    const frame = Buffer.from(payload.buffer, payload.byteOffset - headLength, headLength + payload.length);
    writePrefix(frame, FLAG_HAS_PAYLOAD, headerBytes);
    return [frame];
  }
  const head = prefixed(FLAG_HAS_PAYLOAD, headerBytes);
  // Small payloads ride in the head: one WebSocket frame is cheaper than two.
  return payload.length <= SMALL_PAYLOAD_BYTES ? [Buffer.concat([head, payload])] : [head, payload];
}

/** Decodes one frame; INVALID_MESSAGE or MESSAGE_TOO_LARGE (with a message saying why) when it is bad. */
export function decodeFrame(frame: Buffer): DecodedFrame {
  if (frame.length > MAX_FRAME_BYTES) {
    throw new FerryError('MESSAGE_TOO_LARGE', `frame is ${frame.length} bytes, more than the limit of ${MAX_FRAME_BYTES}`);
  }
  if (frame.length < PREFIX_BYTES) throw invalid(`frame is ${frame.length} bytes, shorter than its ${PREFIX_BYTES}-byte prefix`);
  const flags = frame[0]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw invalid(`unknown flags 0x${flags.toString(16)}`);
  if ((flags & FLAG_COMPRESSED) !== 0 && (flags & FLAG_HAS_PAYLOAD) === 0) throw invalid('compressed flag without a payload');
  const headerLength = frame.readUInt32BE(1);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new FerryError('MESSAGE_TOO_LARGE', `frame header is ${headerLength} bytes, more than the limit of ${MAX_HEADER_BYTES}`);
  }
  if (PREFIX_BYTES + headerLength > frame.length) {
    throw invalid(`header length ${headerLength} runs past the end of the ${frame.length}-byte frame`);
  }
  const header = parseHeader(frame.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength));
  const body = frame.subarray(PREFIX_BYTES + headerLength);
  if ((flags & FLAG_HAS_PAYLOAD) === 0) {
    if (body.length > 0) throw invalid(`${body.length} payload bytes in a frame flagged as having no payload`);
    return { header, compressed: false };
  }
  if ((flags & FLAG_COMPRESSED) === 0) return { header, payload: body, compressed: false };
  return { header, payload: decompressBounded(body, MAX_FRAME_BYTES - PREFIX_BYTES - headerLength), compressed: true };
}

function prefixed(flags: number, headerBytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + headerBytes.length);
  writePrefix(out, flags, headerBytes);
  return out;
}

function writePrefix(out: Buffer, flags: number, headerBytes: Buffer): void {
  out[0] = flags;
  out.writeUInt32BE(headerBytes.length, 1);
  headerBytes.copy(out, PREFIX_BYTES);
}

function parseHeader(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw invalid(`header is not UTF-8 JSON: ${errorMessage(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('header is not a JSON object');
  return value as Record<string, unknown>;
}

/**
 * Whether a full compression attempt is worth its CPU. Large payloads are probed with three
 * 4 KiB samples (start, middle, end): only when none of them compresses is the payload taken
 * for incompressible (media, archives, encrypted data). A file with a compressible part in
 * any of those places still gets the full attempt.
 */
function worthTrying(payload: Buffer): boolean {
  if (payload.length < MIN_COMPRESS_BYTES) return false;
  if (payload.length < SAMPLE_PROBE_MIN_BYTES) return true;
  const scratch = (sampleScratch ??= Buffer.allocUnsafe(zstd.compressBound(SAMPLE_BYTES)));
  const last = payload.length - SAMPLE_BYTES;
  for (const offset of [0, Math.floor(last / 2), last]) {
    const size = compressor().compress(scratch, payload.subarray(offset, offset + SAMPLE_BYTES), ZSTD_LEVEL);
    if (size < SAMPLE_BYTES * SAMPLE_SKIP_RATIO) return true;
  }
  return false;
}

/**
 * Decompresses into a buffer of the size the zstd frame declares, after checking that size
 * against `limit`. A frame whose real content is larger than declared fails inside zstd
 * (destination too small) instead of growing the buffer, so memory stays bounded by `limit`.
 */
function decompressBounded(compressed: Buffer, limit: number): Buffer {
  let declared: number | null;
  try {
    declared = zstd.getFrameContentSize(compressed);
  } catch (err) {
    throw invalid(`compressed payload is not a zstd frame: ${errorMessage(err)}`);
  }
  if (declared === null) throw invalid('compressed payload does not declare its decompressed size');
  if (declared > limit) {
    throw new FerryError('MESSAGE_TOO_LARGE', `compressed payload expands to ${declared} bytes, more than the limit of ${limit}`);
  }
  const out = Buffer.allocUnsafe(declared);
  let size: number;
  try {
    size = decompressor().decompress(out, compressed);
  } catch (err) {
    throw invalid(`compressed payload is corrupt: ${errorMessage(err)}`);
  }
  if (size !== declared) throw invalid(`compressed payload declared ${declared} bytes but held ${size}`);
  return out;
}

function compressor(): ZstdBinding.CCtx {
  return (cctx ??= new zstd.CCtx());
}

function decompressor(): ZstdBinding.DCtx {
  return (dctx ??= new zstd.DCtx());
}

function invalid(why: string): FerryError {
  return new FerryError('INVALID_MESSAGE', `invalid frame: ${why}`);
}
