import { describe, expect, it } from 'vitest';
import { FerryError } from '../core/errors.js';
import type { Message, PeerConnection } from '../protocol/connection.js';
import { RateLimits } from '../core/rate-limiter.js';
import { RangeFetcher, SMALL_RANGE_BYTES } from './range-fetcher.js';

type Item = { path: string; offset: number; blocks: { size: number; hash: string }[] };

/** A connection that answers from `files` (path → bytes) and records every request. */
function fakeConnection(files: Map<string, Buffer>, reply?: (m: Message) => Message): { conn: PeerConnection; requests: Message[] } {
  const requests: Message[] = [];
  const slice = (r: Item) => {
    const data = files.get(r.path);
    const size = r.blocks.reduce((n, b) => n + b.size, 0);
    if (!data) throw new FerryError('NOT_FOUND', `${r.path} is not here`);
    return data.subarray(r.offset, r.offset + size);
  };
  const conn = {
    request: async (m: Message): Promise<Message> => {
      requests.push(m);
      await new Promise((r) => setImmediate(r));
      if (reply) return reply(m);
      if (m.header.type === 'range') return { header: { type: 'range' }, payload: slice(m.header as unknown as Item) };
      const parts: Buffer[] = [];
      const sizes: number[] = [];
      const errors: Record<number, unknown> = {};
      (m.header.items as Item[]).forEach((item, i) => {
        try {
          parts.push(slice(item));
          sizes.push(parts.at(-1)!.length);
        } catch (err) {
          sizes.push(-1);
          errors[i] = { code: (err as FerryError).code, message: (err as Error).message };
        }
      });
      return { header: { type: 'ranges', sizes, errors }, payload: Buffer.concat(parts) };
    },
  } as unknown as PeerConnection;
  return { conn, requests };
}

const blocksOf = (size: number) => [{ size, hash: 'ab'.repeat(32) }];

describe('RangeFetcher', () => {
  it('sends small ranges asked for in the same turn as one request, and gives each caller its bytes', async () => {
    const files = new Map([['a', Buffer.from('aaaa')], ['b', Buffer.from('bbbbbb')], ['c', Buffer.from('cc')]]);
    const { conn, requests } = fakeConnection(files);
    const fetcher = new RangeFetcher(conn);
    const got = await Promise.all([fetcher.fetch('f', 'a', 0, blocksOf(4)), fetcher.fetch('f', 'b', 2, blocksOf(3)), fetcher.fetch('f', 'c', 0, blocksOf(2))]);
    expect(got.map((b) => b.toString())).toEqual(['aaaa', 'bbb', 'cc']);
    expect(requests.map((r) => r.header.type)).toEqual(['ranges']);
    expect((requests[0]!.header.items as Item[]).map((i) => i.path)).toEqual(['a', 'b', 'c']);
  });

  it('a range the peer cannot serve fails alone, with its code', async () => {
    const { conn } = fakeConnection(new Map([['a', Buffer.from('aaaa')]]));
    const fetcher = new RangeFetcher(conn);
    const [a, missing] = await Promise.allSettled([fetcher.fetch('f', 'a', 0, blocksOf(4)), fetcher.fetch('f', 'gone', 0, blocksOf(4))]);
    expect(a.status === 'fulfilled' && a.value.toString()).toBe('aaaa');
    expect(missing.status === 'rejected' && (missing.reason as FerryError).code).toBe('NOT_FOUND');
  });

  it('a large range goes alone as a range request; a full batch is sent without waiting', async () => {
    const big = Buffer.alloc(SMALL_RANGE_BYTES + 1, 7);
    const files = new Map([['big', big], ...Array.from({ length: 65 }, (_, i) => [`s${i}`, Buffer.from([i])] as [string, Buffer])]);
    const { conn, requests } = fakeConnection(files);
    const fetcher = new RangeFetcher(conn);
    const small = Array.from({ length: 65 }, (_, i) => fetcher.fetch('f', `s${i}`, 0, blocksOf(1)));
    expect(requests.length).toBe(1); // the 64th range filled a batch: sent at once
    const [bigData, ...smallData] = await Promise.all([fetcher.fetch('f', 'big', 0, blocksOf(big.length)), ...small]);
    expect(bigData.equals(big)).toBe(true);
    expect(smallData.map((b) => b[0])).toEqual(Array.from({ length: 65 }, (_, i) => i));
    expect(requests.map((r) => [r.header.type, (r.header.items as Item[] | undefined)?.length])).toEqual([['ranges', 64], ['range', undefined], ['ranges', 1]]);
  });

  it('a reply that does not add up fails every range in it (nothing is handed out)', async () => {
    const { conn } = fakeConnection(new Map(), () => ({ header: { type: 'ranges', sizes: [4, 4] }, payload: Buffer.from('aaaab') }));
    const fetcher = new RangeFetcher(conn);
    const results = await Promise.allSettled([fetcher.fetch('f', 'a', 0, blocksOf(4)), fetcher.fetch('f', 'b', 0, blocksOf(4))]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as FerryError).code)).toEqual(['INVALID_MESSAGE', 'INVALID_MESSAGE']);
  });

  it("asks a paced peer for two seconds' worth of its rate at a time, and one block larger than that alone", async () => {
    const answers: Array<() => void> = [];
    const requests: Message[] = [];
    const conn = {
      request: (m: Message) => {
        requests.push(m);
        const size = (m.header.blocks as { size: number }[]).reduce((n, b) => n + b.size, 0);
        return new Promise<Message>((resolve) => answers.push(() => resolve({ header: { type: 'range' }, payload: Buffer.alloc(size) })));
      },
    } as unknown as PeerConnection;
    const fetcher = new RangeFetcher(conn);
    fetcher.peerSendRate(100 * 1024); // 200 KiB may be asked for at a time
    const range = 100 * 1024;
    const got = Array.from({ length: 4 }, (_, i) => fetcher.fetch('f', `r${i}`, 0, blocksOf(range)));
    const turn = () => new Promise((r) => setImmediate(r));
    await turn();
    expect(requests.map((m) => m.header.path)).toEqual(['r0', 'r1']);
    answers.shift()!();
    await turn();
    expect(requests.map((m) => m.header.path)).toEqual(['r0', 'r1', 'r2']);
    const huge = fetcher.fetch('f', 'huge', 0, blocksOf(300 * 1024));
    answers.shift()!();
    answers.shift()!();
    await turn();
    expect(requests.map((m) => m.header.path)).toEqual(['r0', 'r1', 'r2', 'r3']);
    answers.shift()!();
    await turn();
    expect(requests.at(-1)!.header.path).toBe('huge'); // nothing else asked for: it goes though over the cap
    answers.shift()!();
    expect((await Promise.all([...got, huge])).map((b) => b.length)).toEqual([range, range, range, range, 300 * 1024]);
    fetcher.peerSendRate(0);
    const free = Array.from({ length: 4 }, (_, i) => fetcher.fetch('f', `u${i}`, 0, blocksOf(range)));
    expect(requests.length).toBe(9); // unpaced peer: all at once
    for (const answer of answers.splice(0)) answer();
    await Promise.all(free);
  });

  it('with a receive limit, waits for its turn before asking', async () => {
    let now = 0;
    const timers: Array<() => void> = [];
    const clock = { now: () => now, setTimeout: (fn: () => void) => (timers.push(fn), undefined as unknown as NodeJS.Timeout), setInterval: () => undefined as unknown as NodeJS.Timeout };
    const big = Buffer.alloc(200 * 1024, 1);
    const { conn, requests } = fakeConnection(new Map([['big', big]]));
    const rates = new RateLimits(clock);
    rates.set(undefined, 100 * 1024);
    const fetcher = new RangeFetcher(conn, rates);
    const first = fetcher.fetch('f', 'big', 0, blocksOf(big.length)); // 2 s worth: waits 1.75 s
    await new Promise((r) => setImmediate(r));
    expect(requests.length).toBe(0);
    now = 1750;
    timers.shift()!();
    expect((await first).equals(big)).toBe(true);
    expect(requests.length).toBe(1);
  });
});
