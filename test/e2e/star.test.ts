/**
 * A hub and three spokes; each spoke knows only the hub. Changes travel spoke → hub → spokes,
 * and a spoke that was stopped catches up from the hub.
 */
import * as fsp from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MiB,
  connectStar,
  sha256,
  sha256File,
  uniqueText,
  useCluster,
  waitConverged,
  waitForAbsent,
  waitForContent,
  withLogsOnError,
  writeFile,
  writeRandomFile,
  type FerryNode,
} from './harness.js';

const FOLDER = 'team';
const cluster = useCluster('star');
let hub: FerryNode;
let a: FerryNode;
let b: FerryNode;
let c: FerryNode;
let all: FerryNode[];

const written = { fromA: '', fromABin: '', shared: '' };

beforeAll(async () => {
  const cl = await cluster.ready;
  await withLogsOnError(cl, async () => {
    hub = await cl.createNode('hub');
    a = await cl.createNode('spokeA');
    b = await cl.createNode('spokeB');
    c = await cl.createNode('spokeC');
    all = [hub, a, b, c];
    await connectStar(hub, [a, b, c], FOLDER);
    for (const n of all) await n.start();
  });
}, 120_000);

describe('a hub with three spokes', () => {
  it('a file added on spoke A reaches spokes B and C through the hub', async () => {
    written.fromA = uniqueText('written on spoke A');
    await writeFile(a.file(FOLDER, 'from-a.txt'), written.fromA);
    written.fromABin = await writeRandomFile(a.file(FOLDER, 'media/clip.bin'), 4 * MiB);
    written.shared = uniqueText('shared notes v1');
    await writeFile(a.file(FOLDER, 'shared.txt'), written.shared);

    for (const n of [hub, b, c]) await waitForContent(n, FOLDER, 'from-a.txt', written.fromA);
    const tree = await waitConverged(all, FOLDER);
    expect(tree['from-a.txt']?.hash).toBe(sha256(written.fromA));
    expect(tree['media/clip.bin']?.hash).toBe(written.fromABin);
    for (const n of [b, c]) expect(await sha256File(n.file(FOLDER, 'media/clip.bin'))).toBe(written.fromABin);

    // The spokes only know (and only talk to) the hub.
    for (const s of [a, b, c]) {
      const st = await s.status();
      expect(st.peers.map((p) => p.deviceId)).toEqual([hub.deviceId]);
      expect(st.peers[0]!.connected).toBe(true);
    }
    const hs = await hub.status();
    expect(hs.peers.filter((p) => p.connected).map((p) => p.deviceId).sort()).toEqual([a.deviceId, b.deviceId, c.deviceId].sort());
  }, 120_000);

  it('edits on two spokes while a third is stopped reach the hub and the running spoke', async () => {
    await c.stop();
    written.shared = uniqueText('shared notes v2, edited on spoke A');
    await writeFile(a.file(FOLDER, 'shared.txt'), written.shared);
    await fsp.rm(a.file(FOLDER, 'from-a.txt'));
    await writeFile(b.file(FOLDER, 'from-b/report.txt'), uniqueText('report from spoke B'));
    await writeRandomFile(b.file(FOLDER, 'media/clip.bin'), 3 * MiB); // B replaces A's clip

    await waitForContent(b, FOLDER, 'shared.txt', written.shared);
    await waitForAbsent(b, FOLDER, 'from-a.txt');
    await waitForContent(a, FOLDER, 'from-b/report.txt', await fsp.readFile(b.file(FOLDER, 'from-b/report.txt')));
    const tree = await waitConverged([hub, a, b], FOLDER);
    expect(tree['shared.txt']?.hash).toBe(sha256(written.shared));
    expect(tree['from-a.txt']).toBeUndefined();
    expect(tree['media/clip.bin']?.size).toBe(3 * MiB);
  }, 120_000);

  it('the stopped spoke catches up when it comes back', async () => {
    await c.start();
    const want = await waitConverged([hub, a, b], FOLDER);
    const tree = await waitConverged(all, FOLDER);
    expect(tree).toEqual(want);
    expect(await fsp.readFile(c.file(FOLDER, 'shared.txt'), 'utf8')).toBe(written.shared);
    expect(await fsp.readFile(c.file(FOLDER, 'from-b/report.txt'))).toEqual(await fsp.readFile(b.file(FOLDER, 'from-b/report.txt')));
    expect(await sha256File(c.file(FOLDER, 'media/clip.bin'))).toBe(await sha256File(b.file(FOLDER, 'media/clip.bin')));
    expect(tree['from-a.txt']).toBeUndefined();
  }, 120_000);
});
