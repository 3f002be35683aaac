/**
 * A hub and three spokes; each spoke knows only the hub. Changes travel spoke → hub → spokes,
 * and a spoke that was stopped catches up from the hub.
 */
import * as fsp from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MiB,
  connectStar,
  folderStatus,
  parseJsonOutput,
  sha256,
  sha256File,
  uniqueText,
  useCluster,
  waitConverged,
  waitFor,
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

describe('a receive-only hub', () => {
  it("still relays every spoke's changes to the others, keeps its own edits to itself, and takes the spokes' copy back on revert", async () => {
    await hub.ferryOk('folder', 'set', FOLDER, '--mode', 'receive-only');
    await waitFor(async () => folderStatus(await hub.status(), FOLDER)?.mode === 'receive-only', { message: 'the hub to be receive-only' });
    const fromA = uniqueText('written on spoke A while the hub only receives');
    await writeFile(a.file(FOLDER, 'relayed.txt'), fromA);
    for (const n of [hub, b, c]) await waitForContent(n, FOLDER, 'relayed.txt', fromA);

    await writeFile(hub.file(FOLDER, 'relayed.txt'), 'edited on the hub\n');
    await writeFile(hub.file(FOLDER, 'hub-notes.txt'), 'the hub only\n');
    await waitFor(async () => folderStatus(await hub.status(), FOLDER)?.notSent === 2, { message: 'the hub to hold back its two changes' });
    const fromB = uniqueText('written on spoke B meanwhile');
    await writeFile(b.file(FOLDER, 'from-b-later.txt'), fromB);
    for (const n of [a, c]) await waitForContent(n, FOLDER, 'from-b-later.txt', fromB);
    for (const n of [a, b, c]) {
      expect(await fsp.readFile(n.file(FOLDER, 'relayed.txt'), 'utf8')).toBe(fromA);
      await expect(fsp.access(n.file(FOLDER, 'hub-notes.txt'))).rejects.toThrow(/ENOENT/);
    }

    expect(parseJsonOutput<{ paths: string[] }>(await hub.ferryOk('folder', 'revert', FOLDER, '--json')).paths).toEqual(['hub-notes.txt', 'relayed.txt']);
    await waitForContent(hub, FOLDER, 'relayed.txt', fromA);
    await waitForAbsent(hub, FOLDER, 'hub-notes.txt');
    await hub.ferryOk('folder', 'set', FOLDER, '--mode', 'send-receive');
    const tree = await waitConverged(all, FOLDER);
    expect(tree['relayed.txt']?.hash).toBe(sha256(fromA));
    expect(tree['hub-notes.txt']).toBeUndefined();
  }, 120_000);
});
