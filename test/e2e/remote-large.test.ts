/**
 * A 1 GiB file through the real CLI and a real node: `ferry put` up, `ferry get` back, both
 * compared with the original by streaming SHA-256, and the node's peak memory checked to stay
 * far below the file's size (uploads and downloads stream; nothing holds the file).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MiB, sha256File, useCluster } from './harness.js';
import { peakRss, startRemoteNode, writeStampedFile, type RemoteNode } from './remote-helpers.js';

const cluster = useCluster('remote-large');
const SIZE = 1024 * MiB;
/** The node's peak resident memory must stay below this (the file is 1 GiB). */
const PEAK_RSS_LIMIT = 400 * 1e6;
const LONG = 600_000;

let r: RemoteNode;

beforeAll(async () => {
  r = await startRemoteNode(await cluster.ready, 'large', ['big']);
}, 120_000);

describe('remote access with a 1 GiB file', () => {
  it('uploads and downloads it byte for byte, with the node streaming it', async () => {
    const idlePeak = await peakRss(r.node.proc!.pid!);
    const src = path.join(r.scratch, 'src', 'large.bin');
    let t = Date.now();
    const sum = await writeStampedFile(src, SIZE);
    const writeMs = Date.now() - t;

    t = Date.now();
    type Put = { files: { size: number; transferred: number; sha256: string; skipped: boolean }[] };
    const put = (await r.cli.json<Put>(r.alice, ['put', src, 'big/'], LONG)).files[0]!;
    const putMs = Date.now() - t;
    expect(put).toMatchObject({ size: SIZE, transferred: SIZE, sha256: sum, skipped: false });
    expect(await sha256File(r.node.file('big', 'large.bin'))).toBe(sum);
    expect((await fsp.readdir(r.node.folderPath('big'))).filter((n) => n.startsWith('.ferry.tmp'))).toEqual([]);

    const dl = path.join(r.scratch, 'dl');
    await fsp.mkdir(dl, { recursive: true });
    t = Date.now();
    type Got = { files: { size: number; transferred: number; cachedBytes: number; sha256: string }[] };
    const got = (await r.cli.json<Got>(r.alice, ['get', 'big/large.bin', dl], LONG)).files[0]!;
    const getMs = Date.now() - t;
    expect(got).toMatchObject({ size: SIZE, transferred: SIZE, cachedBytes: 0, sha256: sum });
    expect((await fsp.stat(path.join(dl, 'large.bin'))).size).toBe(SIZE);
    expect(await sha256File(path.join(dl, 'large.bin'))).toBe(sum);

    const peak = await peakRss(r.node.proc!.pid!);
    console.log(
      `1 GiB: written in ${writeMs} ms; put ${putMs} ms (${(SIZE / MiB / (putMs / 1000)).toFixed(0)} MiB/s); ` +
        `get ${getMs} ms (${(SIZE / MiB / (getMs / 1000)).toFixed(0)} MiB/s); node peak RSS ${(peak / MiB).toFixed(0)} MiB (${(idlePeak / MiB).toFixed(0)} MiB before)`,
    );
    expect(peak).toBeLessThan(PEAK_RSS_LIMIT);
    await fsp.rm(src);
    await fsp.rm(path.join(dl, 'large.bin'));
  }, LONG * 2);
});
