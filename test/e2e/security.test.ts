/**
 * Trust and what never leaves a node: device-ID pinning, refusal of unknown devices,
 * `.ferryignore` patterns and Ferry's own `.ferry*` names.
 */
import * as fsp from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  exists,
  sha256,
  sleep,
  snapshotsEqual,
  diffSnapshots,
  treeSnapshot,
  uniqueText,
  useCluster,
  waitConverged,
  waitFor,
  waitForContent,
  withLogsOnError,
  writeFile,
  type FerryNode,
} from './harness.js';

const cluster = useCluster('security');
/** How long "never" is: after the positive signal, wait this much longer before asserting absence. */
const SETTLE_MS = 3000;

/** Lines of a node's log that mention any of the given device IDs (full or first group) or other strings. */
async function logLinesMentioning(node: FerryNode, ids: string[], others: string[] = []): Promise<string[]> {
  const keys = [...ids.flatMap((id) => [id, id.slice(0, 7)]), ...others];
  return (await node.log()).split('\n').filter((l) => keys.some((k) => l.includes(k)));
}

describe('device ID pinning', () => {
  let wa: FerryNode;
  let wb: FerryNode;
  let decoy: FerryNode;

  beforeAll(async () => {
    const c = await cluster.ready;
    await withLogsOnError(c, async () => {
      wa = await c.createNode('wrongA');
      wb = await c.createNode('wrongB');
      decoy = await c.createNode('decoy'); // a real identity, never started: a valid but wrong ID
      await wa.addFolder('pin');
      await wb.addFolder('pin');
      // wa has wb's address but under the decoy's device ID; wb knows wa correctly.
      await wa.addPeer(wb, ['pin'], { deviceId: decoy.deviceId });
      await wb.addPeer(wa, ['pin']);
      await writeFile(wa.file('pin', 'from-a.txt'), uniqueText('only on A'));
      await writeFile(wb.file('pin', 'from-b.txt'), uniqueText('only on B'));
      await wa.start();
      await wb.start();
    });
  }, 60_000);

  it('a peer configured under a wrong device ID never syncs, and the log says why', async () => {
    const mismatch = /mismatch|does ?n[o']t match|unexpected|wrong|instead|presented|differ|expected/i;
    // A line about the configured peer (its ID or its address) that says the ID did not match.
    const about = () => logLinesMentioning(wa, [decoy.deviceId], [wb.address]);
    await waitFor(async () => (await about()).some((l) => mismatch.test(l)), {
      message: async () =>
        `wrongA's log to say that the device at ${wb.address} is not ${decoy.deviceId} (a line naming the configured ID or address and the mismatch); lines naming it:\n${(await about()).slice(-10).join('\n')}\n(last lines of the log:\n${(await wa.log()).split('\n').slice(-15).join('\n')})`,
    });
    await sleep(SETTLE_MS);
    expect(await exists(wa.file('pin', 'from-b.txt'))).toBe(false);
    expect(await exists(wb.file('pin', 'from-a.txt'))).toBe(false);
    const sa = await wa.status();
    expect(sa.peers.find((p) => p.deviceId === decoy.deviceId)?.connected).toBe(false);
    expect(sa.peers.some((p) => p.deviceId === wb.deviceId && p.connected)).toBe(false);
    const sb = await wb.status();
    expect(sb.peers.find((p) => p.deviceId === wa.deviceId)?.connected).toBe(false);
  }, 60_000);
});

describe('unknown devices, ignore patterns and internal names', () => {
  let p: FerryNode;
  let q: FerryNode;
  let r: FerryNode;

  beforeAll(async () => {
    const c = await cluster.ready;
    await withLogsOnError(c, async () => {
      p = await c.createNode('trustP');
      q = await c.createNode('trustQ');
      for (const n of [p, q]) {
        await n.addFolder('club');
        await n.addFolder('ign');
      }
      await p.addPeer(q, ['club', 'ign']);
      await q.addPeer(p, ['club', 'ign']);
      // The ignore file is in place before the node first scans the folder.
      await writeFile(p.file('ign', '.ferryignore'), '# local junk\n*.log\nbuild/\n');
      await p.start();
      await q.start();
    });
  }, 60_000);

  it('a device that is not configured is refused and changes nothing', async () => {
    const c = cluster.get();
    const pText = uniqueText('members only');
    await writeFile(p.file('club', 'p-file.txt'), pText);
    await waitForContent(q, 'club', 'p-file.txt', pText);
    await waitConverged([p, q], 'club');
    const before = await treeSnapshot(p.folderPath('club'));

    // r knows p (correct ID and address, same folder ID) but p has never heard of r.
    r = await c.createNode('intruder');
    await r.addFolder('club');
    await writeFile(r.file('club', 'r-file.txt'), uniqueText('from the intruder'));
    await writeFile(r.file('club', 'p-file.txt'), uniqueText('intruder overwrite attempt, newer'));
    await r.addPeer(p, ['club']);
    await r.start();

    const refused = /refus|reject|unknown|not configured|untrusted|pending/i;
    await waitFor(async () => (await logLinesMentioning(p, [r.deviceId])).some((l) => refused.test(l)), {
      message: async () =>
        `trustP's log to say it refused ${r.deviceId}; lines naming it:\n${(await logLinesMentioning(p, [r.deviceId])).slice(-10).join('\n')}\n(last lines of the log:\n${(await p.log()).split('\n').slice(-15).join('\n')})`,
    });
    await sleep(SETTLE_MS);

    const after = await treeSnapshot(p.folderPath('club'));
    expect(snapshotsEqual(before, after), `trustP's folder changed:\n${diffSnapshots(before, after, 'before', 'after').join('\n')}`).toBe(true);
    expect(await exists(q.file('club', 'r-file.txt'))).toBe(false);
    expect(await fsp.readFile(q.file('club', 'p-file.txt'), 'utf8')).toBe(pText);
    // Nor did the intruder get anything.
    expect(await fsp.readFile(r.file('club', 'p-file.txt'), 'utf8')).not.toBe(pText);
    const ps = await p.status();
    expect(ps.peers.some((x) => x.deviceId === r.deviceId && x.connected)).toBe(false);
    const rs = await r.status();
    expect(rs.peers.find((x) => x.deviceId === p.deviceId)?.connected).toBe(false);
    await r.stop();
  }, 90_000);

  it('.ferryignore patterns (*.log, build/) keep files local', async () => {
    const f = (rel: string) => p.file('ign', rel);
    await writeFile(f('app.log'), 'log line\n');
    await writeFile(f('logs/deep/x.log'), 'deep log\n');
    await writeFile(f('build/out.bin'), 'artifact\n');
    await writeFile(f('build/sub/y.txt'), 'inside an ignored directory\n');
    await writeFile(f('src/main.c'), 'int main(void) { return 0; }\n');
    await writeFile(f('notes/build'), 'a file named build is not a build/ directory\n');
    const keep = uniqueText('keep me');
    await writeFile(f('keep.txt'), keep);

    await waitForContent(q, 'ign', 'keep.txt', keep);
    await waitForContent(q, 'ign', 'src/main.c', 'int main(void) { return 0; }\n');
    await waitForContent(q, 'ign', 'notes/build', 'a file named build is not a build/ directory\n');
    await sleep(SETTLE_MS);

    for (const rel of ['app.log', 'logs/deep/x.log', 'build', 'build/out.bin', 'build/sub/y.txt']) {
      expect(await exists(q.file('ign', rel)), `${rel} must not reach trustQ`).toBe(false);
    }
    for (const rel of ['app.log', 'logs/deep/x.log', 'build/out.bin', 'build/sub/y.txt']) {
      expect(await exists(f(rel)), `${rel} stays on trustP`).toBe(true);
    }
    // Ignored files do not keep either node from being in sync.
    for (const n of [p, q]) {
      await waitFor(async () => (await n.status()).folders.find((x) => x.id === 'ign')?.inSync === true, {
        timeoutMs: 10_000,
        message: `${n.name}: folder ign inSync`,
      });
    }
  }, 90_000);

  it('files whose names start with .ferry never sync', async () => {
    const f = (rel: string) => p.file('ign', rel);
    await writeFile(f('.ferry-notes.txt'), 'looks like Ferry\'s own\n');
    await writeFile(f('.ferrything/inner.txt'), 'inside a .ferry directory\n');
    await writeFile(f('sub/.ferry-tmp-123'), 'a temp-looking file\n');
    await writeFile(f('sub/visible.txt'), 'visible\n');
    const marker = uniqueText('written after the .ferry files');
    await writeFile(f('after-internal.txt'), marker);

    await waitForContent(q, 'ign', 'after-internal.txt', marker);
    await waitForContent(q, 'ign', 'sub/visible.txt', 'visible\n');
    await sleep(SETTLE_MS);
    for (const rel of ['.ferry-notes.txt', '.ferrything', '.ferrything/inner.txt', 'sub/.ferry-tmp-123']) {
      expect(await exists(q.file('ign', rel)), `${rel} must not reach trustQ`).toBe(false);
    }
    // And they are left alone where they were written.
    expect(sha256(await fsp.readFile(f('.ferry-notes.txt')))).toBe(sha256('looks like Ferry\'s own\n'));
    expect(await exists(f('sub/.ferry-tmp-123'))).toBe(true);
  }, 90_000);
});
