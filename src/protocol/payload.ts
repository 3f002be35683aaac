/**
 * Buffers for large payloads (file data served to a peer) with free room before them, so a
 * transport can put its frame header there and send header and payload as one piece. Over the
 * WebSocket transport a message sent in two parts is copied whole on arrival to join them
 * (~0.6 s of the receiver's CPU per GiB); one part is handed on as it arrived.
 */

/** Room for a frame's prefix and header (a reply's header is some tens of bytes; a `ranges` reply's lists its sizes). */
const HEADROOM = 2048;
/** Payloads joined below this size are not worth the room (a transport sends them in one piece anyway). */
const SMALL_PAYLOAD_BYTES = 16 * 1024;
/** Payloads whose room is still free: each may be used once. */
const withHeadroom = new WeakSet<Buffer>();

export function allocPayload(size: number): Buffer {
  const payload = Buffer.allocUnsafeSlow(HEADROOM + size).subarray(HEADROOM);
  withHeadroom.add(payload);
  return payload;
}

/** The parts as one payload; a large one with room before it. */
export function joinPayload(parts: readonly Buffer[]): Buffer {
  const size = parts.reduce((n, p) => n + p.length, 0);
  if (size <= SMALL_PAYLOAD_BYTES) return Buffer.concat(parts, size);
  const payload = allocPayload(size);
  let at = 0;
  for (const p of parts) at += p.copy(payload, at);
  return payload;
}

/**
 * Whether `bytes` before `payload` are free for the caller to write (then they are its own,
 * and a second call says no: the same buffer sent twice must not have its header overwritten).
 */
export function takeHeadroom(payload: Buffer, bytes: number): boolean {
  return withHeadroom.delete(payload) && payload.byteOffset >= bytes;
}
