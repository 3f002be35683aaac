/**
 * The gear table for FastCDC: 256 pseudo-random 32-bit values, one per byte value, that the rolling
 * hash adds in as each byte passes. Every node must use exactly the same table, or the same file would
 * be cut at different places on different devices and nothing would deduplicate. Rather than pasting
 * a 256-number blob nobody can check, the table is derived at module load from SHA-256 of a fixed
 * seed: entry i is big-endian 32-bit word (i % 8) of SHA-256(`${GEAR_SEED}:${floor(i / 8)}`), i.e.
 * 32 digests of 8 words each. Changing the seed changes every chunk boundary Ferry has ever produced,
 * so it is versioned in its text and must never be edited in place.
 */
import { createHash } from 'node:crypto';

export const GEAR_SEED = 'ferry/fastcdc/gear/v1';

function buildGearTable(): Int32Array {
  // Int32Array rather than Uint32Array: the hot loop works in signed 32-bit arithmetic (`| 0`), and
  // reading signed values keeps V8 on its int32 fast path. The bit patterns are the same.
  const table = new Int32Array(256);
  for (let block = 0; block < 32; block++) {
    const digest = createHash('sha256').update(`${GEAR_SEED}:${block}`).digest();
    for (let word = 0; word < 8; word++) table[block * 8 + word] = digest.readInt32BE(word * 4);
  }
  return table;
}

export const GEAR: Int32Array = buildGearTable();
