/**
 * Three nodes in a full mesh play the scenario of issue 2: add, crash (kill -9), catch-up,
 * partial update of a large file (byte counters), conflict, rename, delete with versions kept.
 * The steps run in order and share the nodes.
 */
import * as fsp from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KiB,
  MiB,
  connectMesh,
  exists,
  filesWithHashes,
  overwriteRegion,
  settledCounters,
  sha256,
  sha256File,
  treeSnapshot,
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

const FOLDER = 'docs';
const cluster = useCluster('mesh');
let n1: FerryNode;
let n2: FerryNode;
let n3: FerryNode;
let all: FerryNode[];

/** Content written in earlier steps and checked in later ones. */
const written = {
  hello: '',
  helloV2: '',
  firstHash: '',
  cTxt: '',
  script: '',
  bigHash: '',
};

beforeAll(async () => {
  const c = await cluster.ready;
  await withLogsOnError(c, async () => {
    n1 = await c.createNode('node1');
    n2 = await c.createNode('node2');
    n3 = await c.createNode('node3');
    all = [n1, n2, n3];
    await connectMesh(all, FOLDER);
    for (const n of all) await n.start();
  });
}, 120_000);

describe('three nodes in a full mesh', () => {
  it('a file added on node 1 reaches nodes 2 and 3 byte for byte', async () => {
    written.hello = uniqueText('hello from node 1');
    await writeFile(n1.file(FOLDER, 'hello.txt'), written.hello);
    written.firstHash = await writeRandomFile(n1.file(FOLDER, 'data/first.bin'), 3 * MiB);

    for (const n of [n2, n3]) {
      await waitForContent(n, FOLDER, 'hello.txt', written.hello);
    }
    const tree = await waitConverged(all, FOLDER);
    expect(tree['hello.txt']?.hash).toBe(sha256(written.hello));
    expect(tree['data/first.bin']?.hash).toBe(written.firstHash);
    expect(tree['data']?.type).toBe('dir');
    for (const n of all) {
      expect(await sha256File(n.file(FOLDER, 'data/first.bin'))).toBe(written.firstHash);
      const s = await n.status();
      expect(s.running).toBe(true);
      // Everyone is connected to everyone in a mesh.
      const others = all.filter((o) => o !== n).map((o) => o.deviceId).sort();
      expect(s.peers.filter((p) => p.connected).map((p) => p.deviceId).sort()).toEqual(others);
    }
  }, 120_000);

  it('node 1 is killed (kill -9); files added and changed on node 2 reach node 3', async () => {
    await n1.kill9();
    expect(n1.lastExit?.signal).toBe('SIGKILL');

    written.helloV2 = uniqueText('hello changed on node 2, now longer than before');
    written.cTxt = uniqueText('deep file');
    written.script = `#!/bin/sh\necho ${uniqueText('script')}`;
    const f = (rel: string) => n2.file(FOLDER, rel);
    await writeFile(f('hello.txt'), written.helloV2);
    await writeFile(f('nested/a/b/c.txt'), written.cTxt);
    await fsp.mkdir(f('emptydir'), { recursive: true });
    await writeFile(f('Ünïcødé/日本.txt'), 'こんにちは, Ferry\n');
    await writeFile(f('script.sh'), written.script, 0o755);
    await writeFile(f('target.txt'), 'I am the target\n');
    await fsp.symlink('target.txt', f('link'));
    await writeRandomFile(f('data/second.bin'), 2 * MiB);

    await waitForContent(n3, FOLDER, 'hello.txt', written.helloV2);
    const tree = await waitConverged([n2, n3], FOLDER);
    expectScenarioTree(tree);
    expect((await fsp.lstat(n3.file(FOLDER, 'link'))).isSymbolicLink()).toBe(true);
    expect(await fsp.readlink(n3.file(FOLDER, 'link'))).toBe('target.txt');
  }, 120_000);

  it('node 1 restarts and catches up byte for byte', async () => {
    await n1.start();
    const tree = await waitConverged(all, FOLDER);
    expectScenarioTree(tree);
    const t1 = await treeSnapshot(n1.folderPath(FOLDER));
    expect(t1).toEqual(await treeSnapshot(n2.folderPath(FOLDER)));
    expect(await fsp.readFile(n1.file(FOLDER, 'hello.txt'), 'utf8')).toBe(written.helloV2);
    expect(await fsp.readFile(n1.file(FOLDER, 'nested/a/b/c.txt'), 'utf8')).toBe(written.cTxt);
    expect(await fsp.readFile(n1.file(FOLDER, 'Ünïcødé/日本.txt'), 'utf8')).toBe('こんにちは, Ferry\n');
    expect((await fsp.stat(n1.file(FOLDER, 'script.sh'))).mode & 0o777).toBe(0o755);
    expect((await fsp.stat(n1.file(FOLDER, 'emptydir'))).isDirectory()).toBe(true);
    expect(await fsp.readdir(n1.file(FOLDER, 'emptydir'))).toEqual([]);
    expect(await fsp.readlink(n1.file(FOLDER, 'link'))).toBe('target.txt');
  }, 120_000);

  it('a 1 MiB edit in the middle of a 64 MiB file sends only the changed blocks', async () => {
    const size = 64 * MiB;
    written.bigHash = await writeRandomFile(n3.file(FOLDER, 'big.bin'), size);
    await waitFor(async () => {
      for (const n of [n1, n2]) {
        if (!(await exists(n.file(FOLDER, 'big.bin')))) return false;
        if ((await sha256File(n.file(FOLDER, 'big.bin'))) !== written.bigHash) return false;
      }
      return true;
    }, { timeoutMs: 90_000, intervalMs: 1000, message: 'the new 64 MiB big.bin to reach node 1 and node 2' });
    await waitConverged(all, FOLDER);

    const receivers = [n1, n2];
    const before = await settledCounters(receivers);
    await overwriteRegion(n3.file(FOLDER, 'big.bin'), size / 2 - 512 * KiB, MiB);
    written.bigHash = await sha256File(n3.file(FOLDER, 'big.bin'));

    await waitFor(async () => {
      for (const n of receivers) if ((await sha256File(n.file(FOLDER, 'big.bin'))) !== written.bigHash) return false;
      return true;
    }, { timeoutMs: 60_000, intervalMs: 500, message: 'the edited big.bin to reach node 1 and node 2' });
    const tree = await waitConverged(all, FOLDER);
    expect(tree['big.bin']?.hash).toBe(written.bigHash);
    expect(tree['big.bin']?.size).toBe(size);

    const after = await settledCounters(receivers);
    const deltas = receivers.map((n) => after.get(n.name)!.bytesIn - before.get(n.name)!.bytesIn);
    const report = `bytesIn deltas: ${receivers.map((n, i) => `${n.name}=${deltas[i]}`).join(', ')} (file ${size} B, edit ${MiB} B)`;
    console.log(report);
    // Each receiver needs the 1 MiB of new random (incompressible) bytes from someone.
    for (const d of deltas) expect(d, report).toBeGreaterThan(MiB);
    // ... and far less than the file: only the changed blocks travel.
    expect(deltas[0]! + deltas[1]!, report).toBeLessThan(4 * MiB);
  }, 240_000);

  it('the same file edited on two nodes while apart ends as a winner plus a conflict copy on every node', async () => {
    const base = uniqueText('conflict base');
    await writeFile(n1.file(FOLDER, 'conflict.txt'), base);
    for (const n of [n2, n3]) await waitForContent(n, FOLDER, 'conflict.txt', base);
    await waitConverged(all, FOLDER);

    await n2.stop();
    const fromN1 = uniqueText('edit made on node 1');
    const fromN2 = uniqueText('a different, longer edit made on node 2 while it was stopped');
    await writeFile(n1.file(FOLDER, 'conflict.txt'), fromN1);
    await writeFile(n2.file(FOLDER, 'conflict.txt'), fromN2);
    await waitForContent(n3, FOLDER, 'conflict.txt', fromN1);
    await n2.start();

    const expected = [sha256(fromN1), sha256(fromN2)].sort();
    const conflictFiles = async (n: FerryNode) => {
      const names = (await fsp.readdir(n.folderPath(FOLDER))).filter((x) => x.startsWith('conflict')).sort();
      const hashes = await Promise.all(names.map(async (x) => sha256(await fsp.readFile(n.file(FOLDER, x)))));
      return { names, hashes };
    };
    await waitFor(async () => {
      for (const n of all) {
        const { names, hashes } = await conflictFiles(n);
        if (names.length !== 2 || !names.includes('conflict.txt')) return false;
        if (JSON.stringify([...hashes].sort()) !== JSON.stringify(expected)) return false;
      }
      return true;
    }, {
      message: async () => {
        const parts = await Promise.all(all.map(async (n) => {
          const { names, hashes } = await conflictFiles(n).catch(() => ({ names: ['?'], hashes: [] as string[] }));
          return `${n.name}: ${names.map((x, i) => `${x} (${hashes[i] === expected[0] || hashes[i] === expected[1] ? 'one of the edits' : `other content ${hashes[i]?.slice(0, 12)}`})`).join(', ')}`;
        }));
        return `conflict.txt plus one conflict copy holding the two edits on every node\n${parts.join('\n')}`;
      },
    });
    const tree = await waitConverged(all, FOLDER);
    const copies = Object.keys(tree).filter((p) => p !== 'conflict.txt' && p.startsWith('conflict'));
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatch(/\.sync-conflict-/);
    expect([tree['conflict.txt']!.hash, tree[copies[0]!]!.hash].sort()).toEqual(expected);
    for (const n of all) {
      const { names } = await conflictFiles(n);
      expect(names).toEqual(['conflict.txt', copies[0]].sort());
    }
  }, 120_000);

  it('ferry status lists the conflict copy on every node', async () => {
    const tree = await treeSnapshot(n1.folderPath(FOLDER));
    const copy = Object.keys(tree).find((p) => p.includes('.sync-conflict-'));
    expect(copy, 'a conflict copy exists (previous step)').toBeDefined();
    for (const n of all) {
      await waitFor(async () => {
        const s = await n.status();
        return (s.conflicts ?? []).some((c) => c.folder === FOLDER && c.path === copy);
      }, {
        timeoutMs: 10_000,
        message: async () => `${n.name}: status.conflicts to list ${copy}; it is ${JSON.stringify((await n.status()).conflicts)}`,
      });
    }
  }, 60_000);

  it('a renamed file arrives renamed with (almost) no bytes on the wire', async () => {
    await waitConverged(all, FOLDER);
    const receivers = [n1, n3];
    const before = await settledCounters(receivers);
    await fsp.rename(n2.file(FOLDER, 'big.bin'), n2.file(FOLDER, 'big-renamed.bin'));
    for (const n of receivers) {
      await waitForAbsent(n, FOLDER, 'big.bin');
      await waitFor(async () => (await sha256File(n.file(FOLDER, 'big-renamed.bin'))) === written.bigHash, {
        message: `${n.name}: big-renamed.bin with the content of big.bin`,
      });
    }
    const tree = await waitConverged(all, FOLDER);
    expect(tree['big.bin']).toBeUndefined();
    expect(tree['big-renamed.bin']?.hash).toBe(written.bigHash);
    const after = await settledCounters(receivers);
    const deltas = receivers.map((n) => after.get(n.name)!.bytesIn - before.get(n.name)!.bytesIn);
    const report = `bytesIn deltas for a rename of a 64 MiB file: ${receivers.map((n, i) => `${n.name}=${deltas[i]}`).join(', ')}`;
    console.log(report);
    expect(deltas[0]! + deltas[1]!, report).toBeLessThan(MiB);
  }, 120_000);

  it('a file moved into another directory and a renamed directory arrive on every node', async () => {
    await fsp.mkdir(n3.file(FOLDER, 'archive'), { recursive: true });
    await fsp.rename(n3.file(FOLDER, 'data/second.bin'), n3.file(FOLDER, 'archive/second.bin'));
    await fsp.rename(n3.file(FOLDER, 'Ünïcødé'), n3.file(FOLDER, 'Ünïcødé-renamed'));
    const want = await treeSnapshot(n3.folderPath(FOLDER));
    const tree = await waitConverged(all, FOLDER);
    expect(tree).toEqual(want);
    expect(tree['data/second.bin']).toBeUndefined();
    expect(tree['archive/second.bin']?.type).toBe('file');
    expect(tree['Ünïcødé/日本.txt']).toBeUndefined();
    expect(tree['Ünïcødé-renamed/日本.txt']?.hash).toBe(sha256('こんにちは, Ferry\n'));
  }, 120_000);

  it('a deleted file and directory vanish everywhere and are kept in .ferry-versions on the other nodes', async () => {
    await waitConverged(all, FOLDER);
    await fsp.rm(n1.file(FOLDER, 'script.sh'));
    await fsp.rm(n1.file(FOLDER, 'nested'), { recursive: true });
    for (const n of [n2, n3]) {
      await waitForAbsent(n, FOLDER, 'script.sh');
      await waitForAbsent(n, FOLDER, 'nested');
    }
    const tree = await waitConverged(all, FOLDER);
    expect(Object.keys(tree).filter((p) => p === 'script.sh' || p === 'nested' || p.startsWith('nested/'))).toEqual([]);
    for (const n of [n2, n3]) {
      const kept = await filesWithHashes(n.file(FOLDER, '.ferry-versions'));
      const hashes = new Set(kept.map((k) => k.hash));
      const listing = kept.map((k) => k.path.slice(n.folderPath(FOLDER).length + 1)).join(', ');
      expect(hashes.has(sha256(written.script)), `${n.name}: script.sh content in .ferry-versions (has: ${listing})`).toBe(true);
      expect(hashes.has(sha256(written.cTxt)), `${n.name}: nested/a/b/c.txt content in .ferry-versions (has: ${listing})`).toBe(true);
    }
  }, 120_000);
});

/** What the tree must hold after node 2's changes. */
function expectScenarioTree(tree: Record<string, { type: string; mode: number; hash: string }>): void {
  expect(tree['hello.txt']).toMatchObject({ type: 'file', hash: sha256(written.helloV2) });
  expect(tree['data/first.bin']).toMatchObject({ type: 'file', hash: written.firstHash });
  expect(tree['data/second.bin']?.type).toBe('file');
  expect(tree['nested']?.type).toBe('dir');
  expect(tree['nested/a']?.type).toBe('dir');
  expect(tree['nested/a/b']?.type).toBe('dir');
  expect(tree['nested/a/b/c.txt']).toMatchObject({ type: 'file', hash: sha256(written.cTxt) });
  expect(tree['emptydir']?.type).toBe('dir');
  expect(Object.keys(tree).filter((p) => p.startsWith('emptydir/'))).toEqual([]);
  expect(tree['Ünïcødé/日本.txt']).toMatchObject({ type: 'file', hash: sha256('こんにちは, Ferry\n') });
  expect(tree['script.sh']).toMatchObject({ type: 'file', mode: 0o755, hash: sha256(written.script) });
  expect(tree['target.txt']).toMatchObject({ type: 'file', hash: sha256('I am the target\n') });
  expect(tree['link']).toMatchObject({ type: 'symlink', hash: sha256('target.txt') });
}
