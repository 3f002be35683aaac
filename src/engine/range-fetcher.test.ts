import { describe, expect, it } from 'vitest';
import { FerryError } from '../core/errors.js';
import type { Message, PeerConnection } from '../protocol/connection.js';
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
});
