/** The in-memory network behaves like the TLS transport where the engine can tell. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatDeviceId } from '../../src/core/device-id.js';
import { FerryError } from '../../src/core/errors.js';
import type { Message, PeerConnection } from '../../src/protocol/connection.js';
import { MemorySwitch } from '../../src/protocol/memory-network.js';

const idA = formatDeviceId(randomBytes(32));
const idB = formatDeviceId(randomBytes(32));
const idC = formatDeviceId(randomBytes(32));

async function pair(sw: MemorySwitch, opts: { refuse?: boolean } = {}) {
  const accepted: PeerConnection[] = [];
  const refused: string[] = [];
  await sw.network('b:1', idB).listen({
    authorize: (d) => !opts.refuse && d === idA,
    onConnection: (c) => accepted.push(c),
    onRefused: (d) => refused.push(d),
  });
  const a = await sw.network('a:1', idA).dial('b:1', idB);
  return { a, b: accepted[0]!, refused };
}

describe('MemorySwitch', () => {
  it('connects, verifies the device ID, refuses unknown devices', async () => {
    const sw = new MemorySwitch();
    const { a, b } = await pair(sw);
    expect(a.deviceId).toBe(idB);
    expect(b.deviceId).toBe(idA);
    await expect(sw.network('a:1', idA).dial('b:1', idC)).rejects.toMatchObject({ code: 'UNKNOWN_DEVICE' });
    await expect(sw.network('c:1', idC).dial('b:1', idB)).rejects.toMatchObject({ code: 'UNKNOWN_DEVICE' });
    await expect(sw.network('a:1', idA).dial('nowhere:1', idB)).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
  });

  it('delivers messages asynchronously and in order, with byte counts', async () => {
    const sw = new MemorySwitch({ bytesPerSecond: 10 * 1024 * 1024 });
    const { a, b } = await pair(sw);
    const got: number[] = [];
    b.onMessage((m) => got.push(m.header.n as number));
    for (let n = 0; n < 50; n++) a.send({ header: { n }, payload: n % 7 === 0 ? randomBytes(20_000) : undefined });
    expect(got).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(a.stats.bytesOut).toBe(b.stats.bytesIn);
    expect(a.stats.bytesOut).toBeGreaterThan(8 * 20_000);
  });

  it('answers requests, turns handler errors into FerryErrors with their code, times out', async () => {
    const sw = new MemorySwitch({ requestTimeoutMs: 100 });
    const { a, b } = await pair(sw);
    b.onRequest(async (m: Message) => {
      if (m.header.type === 'fail') throw new FerryError('NOT_FOUND', 'no such block');
      if (m.header.type === 'hang') return new Promise(() => undefined);
      return { header: { echo: m.header.type }, payload: m.payload };
    });
    const r = await a.request({ header: { type: 'x' }, payload: Buffer.from('abc') });
    expect(r.header).toEqual({ echo: 'x' });
    expect(r.payload?.toString()).toBe('abc');
    await expect(a.request({ header: { type: 'fail' } })).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such block' });
    await expect(a.request({ header: { type: 'hang' } })).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
  });

  it('partitions kill connections and refuse dials until healed', async () => {
    const sw = new MemorySwitch();
    const { a, b } = await pair(sw);
    const reasons: (Error | undefined)[] = [];
    b.onClose((r) => reasons.push(r));
    const pending = a.request({ header: { type: 'x' } });
    sw.partition(['a:1'], ['b:1']);
    expect(a.closed && b.closed).toBe(true);
    expect(reasons[0]).toMatchObject({ code: 'PEER_UNAVAILABLE' });
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    expect(() => a.send({ header: {} })).toThrow(FerryError);
    await expect(sw.network('a:1', idA).dial('b:1', idB)).rejects.toMatchObject({ code: 'PEER_UNAVAILABLE' });
    sw.heal();
    await expect(sw.network('a:1', idA).dial('b:1', idB)).resolves.toBeDefined();
  });

  it('a graceful close arrives after what was sent before it', async () => {
    const sw = new MemorySwitch();
    const { a, b } = await pair(sw);
    const seen: string[] = [];
    b.onMessage((m) => seen.push(String(m.header.t)));
    b.onClose((r) => seen.push(`closed:${(r as FerryError).code}`));
    a.send({ header: { t: 'last words' } });
    a.close(new FerryError('CLOSED', 'bye'));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['last words', 'closed:CLOSED']);
  });

  it('stalls hold messages; corruption flips a byte of block replies; idle tracks traffic', async () => {
    const sw = new MemorySwitch({ random: () => 0.5 });
    const { a, b } = await pair(sw);
    const block = randomBytes(1000);
    b.onRequest(async () => ({ header: { type: 'block' }, payload: block }));
    sw.corruptNext('b:1', 'a:1', 1);
    const bad = await a.request({ header: { type: 'block' } });
    expect(bad.payload!.equals(block)).toBe(false);
    expect(bad.payload!.length).toBe(block.length);
    expect((await a.request({ header: { type: 'block' } })).payload!.equals(block)).toBe(true);
    sw.stall('a:1', 'b:1', 150);
    const started = Date.now();
    const r = a.request({ header: { type: 'block' } });
    expect(sw.idle).toBe(false);
    await r;
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(sw.idle).toBe(true);
    expect(sw.stats.corrupted).toBe(1);
  });
});
