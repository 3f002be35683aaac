import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { isFerryError } from '../core/errors.js';
import { allocPayload, joinPayload } from '../protocol/payload.js';
import { MAX_FRAME_BYTES, MAX_HEADER_BYTES, decodeFrame, encodeFrame, encodeFrameParts } from './frame.js';

const zstd = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isFerryError(err) ? err.code : `not a FerryError: ${String(err)}`;
  }
  return undefined;
}

/** A compressed frame built by hand, as a hostile peer would. */
function rawFrame(flags: number, header: object, body: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(h.length, 1);
  return Buffer.concat([prefix, h, body]);
}

describe('frame', () => {
  it('round-trips header and payload, keeping "no payload" and "empty payload" apart', () => {
    const none = decodeFrame(encodeFrame({ a: 1, s: 'ü' }));
    expect(none.header).toEqual({ a: 1, s: 'ü' });
    expect(none.payload).toBeUndefined();
    const empty = decodeFrame(encodeFrame({}, Buffer.alloc(0)));
    expect(empty.payload).toEqual(Buffer.alloc(0));
    const data = randomBytes(100_000);
    expect(decodeFrame(encodeFrame({ x: true }, data)).payload!.equals(data)).toBe(true);
  });

  it('compresses compressible payloads of at least 1 KiB, unless told not to', () => {
    const text = Buffer.from('hello ferry '.repeat(10_000));
    const frame = encodeFrame({}, text);
    expect(frame.length).toBeLessThan(text.length / 10);
    const decoded = decodeFrame(frame);
    expect(decoded.compressed).toBe(true);
    expect(decoded.payload!.equals(text)).toBe(true);
    expect(encodeFrame({}, text, { compress: false }).length).toBeGreaterThan(text.length);
    const small = Buffer.alloc(1000, 97);
    expect(decodeFrame(encodeFrame({}, small)).compressed).toBe(false);
  });

  it('sends incompressible payloads as they are', () => {
    for (const size of [2048, 200_000, 1 << 20]) {
      const data = randomBytes(size);
      const frame = encodeFrame({}, data);
      expect(frame.length).toBeLessThan(size + 64);
      expect(decodeFrame(frame).compressed).toBe(false);
    }
  });

  it('still compresses a payload whose only compressible part is in the middle', () => {
    const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(400_000, 7), randomBytes(300_000)]);
    const decoded = decodeFrame(encodeFrame({}, data));
    expect(decoded.compressed).toBe(true);
    expect(decoded.payload!.equals(data)).toBe(true);
  });

  it('refuses frames over the limits on both sides', () => {
    expect(codeOf(() => encodeFrame({}, Buffer.alloc(MAX_FRAME_BYTES)))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => encodeFrame({ big: 'x'.repeat(MAX_HEADER_BYTES) }))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => decodeFrame(Buffer.alloc(MAX_FRAME_BYTES + 1)))).toBe('MESSAGE_TOO_LARGE');
  });

  it('refuses malformed frames with INVALID_MESSAGE', () => {
    expect(codeOf(() => decodeFrame(Buffer.from([2, 0])))).toBe('INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(rawFrame(0x80, {}, Buffer.alloc(0))))).toBe('INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(Buffer.from([0, 0, 0, 0, 9, 0x7b])))).toBe('INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(Buffer.concat([Buffer.from([0, 0, 0, 0, 4]), Buffer.from('[12]')])))).toBe('INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from([0xc3, 0x28])])))).toBe('INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(rawFrame(0, {}, Buffer.from('stray'))))).toBe('INVALID_MESSAGE');
    expect(codeOf(() => decodeFrame(rawFrame(3, {}, randomBytes(100))))).toBe('INVALID_MESSAGE');
    const header = Buffer.alloc(5);
    header.writeUInt32BE(MAX_HEADER_BYTES + 1, 1);
    expect(codeOf(() => decodeFrame(header))).toBe('MESSAGE_TOO_LARGE');
  });

  it('refuses a zstd bomb without allocating its output', () => {
    const dst = Buffer.alloc(zstd.compressBound(64 << 20));
    const compressed = Buffer.from(dst.subarray(0, zstd.compress(dst, Buffer.alloc(64 << 20), 19)));
    expect(compressed.length).toBeLessThan(10_000);
    const before = process.memoryUsage().arrayBuffers;
    expect(codeOf(() => decodeFrame(rawFrame(3, {}, compressed)))).toBe('MESSAGE_TOO_LARGE');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
  });

  it('refuses compressed payloads that lie about or omit their size', () => {
    const content = Buffer.alloc(MAX_FRAME_BYTES * 2, 1);
    const cctx = new zstd.CCtx();
    cctx.setParameter(zstd.CParameter.contentSizeFlag, 0);
    const dst = Buffer.alloc(zstd.compressBound(content.length));
    const unsized = dst.subarray(0, cctx.compress2(dst, content));
    expect(zstd.getFrameContentSize(unsized)).toBeNull();
    expect(codeOf(() => decodeFrame(rawFrame(3, {}, unsized)))).toBe('INVALID_MESSAGE');

    // Two frames: the first declares 1 KiB, the second would add 48 MiB.
    const small = Buffer.alloc(1024, 2);
    const d1 = Buffer.alloc(zstd.compressBound(small.length));
    const first = d1.subarray(0, zstd.compress(d1, small, 1));
    const d2 = Buffer.alloc(zstd.compressBound(content.length));
    const second = d2.subarray(0, zstd.compress(d2, content, 1));
    expect(codeOf(() => decodeFrame(rawFrame(3, {}, Buffer.concat([first, second]))))).toBe('INVALID_MESSAGE');
  });
});

describe('payloads with room before them', () => {
  it('go out as one part holding the header, once; sent again they go as two parts and the first frame stays intact', () => {
    const payload = allocPayload(100 * 1024);
    randomBytes(payload.length).copy(payload);
    const first = encodeFrameParts({ kind: 'reply', id: 7 }, payload, { compress: false });
    expect(first).toHaveLength(1);
    expect(first[0]!.buffer).toBe(payload.buffer); // no copy of the payload
    const firstBytes = Buffer.from(first[0]!);
    const second = encodeFrameParts({ kind: 'reply', id: 8, header: { more: 'x'.repeat(100) } }, payload, { compress: false });
    expect(second).toHaveLength(2);
    expect(first[0]!.equals(firstBytes)).toBe(true);
    for (const [frame, id] of [[first[0]!, 7], [Buffer.concat(second), 8]] as const) {
      const decoded = decodeFrame(frame);
      expect(decoded.header.id).toBe(id);
      expect(decoded.payload!.equals(payload)).toBe(true);
    }
  });

  it('a header larger than the room goes in a part of its own', () => {
    const payload = allocPayload(64 * 1024);
    const parts = encodeFrameParts({ kind: 'reply', id: 1, header: { big: 'y'.repeat(4096) } }, payload, { compress: false });
    expect(parts).toHaveLength(2);
    expect(decodeFrame(Buffer.concat(parts)).payload!.equals(payload)).toBe(true);
  });

  it('joinPayload: small parts joined plainly, large ones into a payload with room', () => {
    const small = [Buffer.from('ab'), Buffer.from('cd')];
    expect(encodeFrameParts({ id: 1 }, joinPayload(small), { compress: false })).toHaveLength(1);
    const large = [randomBytes(40_000), randomBytes(30_000)];
    const joined = joinPayload(large);
    expect(joined.equals(Buffer.concat(large))).toBe(true);
    expect(encodeFrameParts({ id: 2 }, joined, { compress: false })).toHaveLength(1);
    expect(encodeFrameParts({ id: 2 }, Buffer.concat(large), { compress: false })).toHaveLength(2);
  });
});

