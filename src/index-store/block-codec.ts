/**
 * Packs a block list as 36 bytes a block (32-byte SHA-256, then the size as u32 big-endian).
 * The same packing is used in the database and on the wire, so a 1 GiB file's 8,192 blocks
 * cost 288 KiB rather than a megabyte of JSON.
 */
import type { BlockRef } from '../core/file-record.js';
import { FerryError } from '../core/errors.js';

export const PACKED_BLOCK_BYTES = 36;

export function packBlocks(blocks: readonly BlockRef[]): Buffer {
  const out = Buffer.allocUnsafe(blocks.length * PACKED_BLOCK_BYTES);
  blocks.forEach((b, i) => {
    b.hash.copy(out, i * PACKED_BLOCK_BYTES);
    out.writeUInt32BE(b.size, i * PACKED_BLOCK_BYTES + 32);
  });
  return out;
}

export function unpackBlocks(packed: Uint8Array): BlockRef[] {
  if (packed.length % PACKED_BLOCK_BYTES !== 0) {
    throw new FerryError('INVALID_MESSAGE', `block list of ${packed.length} bytes is not a multiple of ${PACKED_BLOCK_BYTES}`);
  }
  const buf = Buffer.from(packed.buffer, packed.byteOffset, packed.length);
  const out: BlockRef[] = new Array(buf.length / PACKED_BLOCK_BYTES);
  for (let i = 0; i < out.length; i++) {
    const at = i * PACKED_BLOCK_BYTES;
    out[i] = { hash: Buffer.from(buf.subarray(at, at + 32)), size: buf.readUInt32BE(at + 32) };
  }
  return out;
}
