/**
 * The command-line contract (docs/cli.md): identity, bad input rejected without changes,
 * configuration picked up by a running node, status of a stopped node.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEVICE_ID_RE,
  describeRun,
  exists,
  folderStatus,
  parseJsonOutput,
  runFerry,
  sleep,
  uniqueText,
  useCluster,
  waitConverged,
  waitFor,
  waitForContent,
  writeFile,
  type FerryNode,
  type RunResult,
} from './harness.js';

const cluster = useCluster('cli');
const FULL_ID = /^[A-Z2-7]{7}(?:-[A-Z2-7]{7}){7}$/;

/** Two new nodes that share `folder` with each other, both running. */
async function runningPair(names: [string, string], folder: string): Promise<[FerryNode, FerryNode]> {
  const c = cluster.get();
  const a = await c.createNode(names[0]);
  const b = await c.createNode(names[1]);
  for (const n of [a, b]) await n.addFolder(folder);
  await a.addPeer(b, [folder]);
  await b.addPeer(a, [folder]);
  await a.start();
  await b.start();
  return [a, b];
}

/** The JSON error object of a failed `--json` command, from stderr or stdout. */
function jsonError(r: RunResult): { code: string; message: string } {
  for (const stream of ['stderr', 'stdout'] as const) {
    try {
      const v = parseJsonOutput<{ error?: { code: string; message: string } }>(r, stream);
      if (v && typeof v === 'object' && v.error) return v.error;
    } catch {
      /* try the other stream */
    }
  }
  throw new Error(describeRun(r, 'no {"error":{...}} object in the output'));
}

describe('ferry command line', () => {
  it('init prints a device ID (8 groups of 7 base32 characters), id prints the same, init is idempotent', async () => {
    const c = cluster.get();
    const n = await c.createNode('ident');
    const init = n.initOutput!;
    expect(init.code).toBe(0);
    expect(n.deviceId).toMatch(FULL_ID);
    expect(init.stdout).toContain(n.deviceId);

    const id = await n.ferryOk('id');
    expect(id.stdout.trim()).toBe(n.deviceId);

    const again = await n.ferryOk('init', '--name', 'ident');
    expect(DEVICE_ID_RE.exec(again.stdout)?.[0]).toBe(n.deviceId);
    expect((await n.ferryOk('id')).stdout.trim()).toBe(n.deviceId);

    // Two homes, two identities.
    const other = await c.createNode('ident2');
    expect(other.deviceId).toMatch(FULL_ID);
    expect(other.deviceId).not.toBe(n.deviceId);
  });

  it('folder add with a missing path fails with a clear error, a non-zero exit and no change', async () => {
    const c = cluster.get();
    const n = await c.createNode('badfolder');
    await n.addFolder('good');
    const listBefore = parseJsonOutput((await n.ferryOk('folder', 'list', '--json')));
    expect(JSON.stringify(listBefore)).toContain('good');

    const missing = path.join(c.root, 'no', 'such', 'dir');
    const r = await n.ferry('folder', 'add', missing, '--id', 'ghost');
    expect(r.code, describeRun(r, 'must fail')).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr.trim().length, describeRun(r, 'must explain on stderr')).toBeGreaterThan(0);
    expect(r.stderr, describeRun(r, 'the error names the path')).toContain(missing);

    const rj = await n.ferry('folder', 'add', missing, '--id', 'ghost', '--json');
    expect(rj.code).not.toBe(0);
    const err = jsonError(rj);
    expect(typeof err.code).toBe('string');
    expect(err.code.length).toBeGreaterThan(0);
    expect(err.message).toContain(missing);

    const listAfter = parseJsonOutput((await n.ferryOk('folder', 'list', '--json')));
    expect(listAfter).toEqual(listBefore);
    expect(JSON.stringify(listAfter)).not.toContain('ghost');
  });

  it('folder add refuses a folder inside another, one holding another, and one overlapping the home', async () => {
    const c = cluster.get();
    const n = await c.createNode('nested');
    await n.addFolder('outer');
    const before = parseJsonOutput(await n.ferryOk('folder', 'list', '--json'));
    const inner = path.join(n.folderPath('outer'), 'inner');
    mkdirSync(inner);
    for (const [dir, why] of [
      [inner, /overlap: one folder cannot hold another/],
      [path.dirname(n.folderPath('outer')), /overlap: one folder cannot hold another/],
      [n.home, /Ferry's home .* overlap/],
      [n.dir, /Ferry's home .* overlap/],
    ] as const) {
      const r = await n.ferry('folder', 'add', dir, '--id', 'nested', '--json');
      expect(r.code, describeRun(r, `${dir} must be refused`)).not.toBe(0);
      expect(jsonError(r)).toMatchObject({ code: 'INVALID_PATH', message: expect.stringMatching(why) });
    }
    expect(parseJsonOutput(await n.ferryOk('folder', 'list', '--json'))).toEqual(before);
  });

  it('peer add with a malformed device ID fails and changes nothing', async () => {
    const c = cluster.get();
    const n = await c.createNode('badpeer');
    const friend = await c.createNode('friend');
    await n.addFolder('f');
    await n.addPeer(friend, ['f']);
    const listBefore = parseJsonOutput((await n.ferryOk('peer', 'list', '--json')));
    expect(JSON.stringify(listBefore)).toContain(friend.deviceId);

    // A typo: one character changed (the check characters must catch it).
    const first = friend.deviceId[0]!;
    const typo = (first === 'A' ? 'B' : 'A') + friend.deviceId.slice(1);
    const stranger = 'ZZZZZZZ-ZZZZZZZ-ZZZZZZZ-ZZZZZZZ-ZZZZZZZ-ZZZZZZZ-ZZZZZZZ-ZZZZZZZ';
    for (const bad of ['not-a-device-id', 'ABCDEFG-1234567', typo, stranger]) {
      const r = await n.ferry('peer', 'add', bad, '127.0.0.1:22999', '--folder', 'f');
      expect(r.code, describeRun(r, `peer add ${bad} must fail`)).not.toBe(0);
      expect(r.code).not.toBeNull();
      expect(r.stderr, describeRun(r, 'must say the device ID is invalid')).toMatch(/device id/i);
      const rj = await n.ferry('peer', 'add', bad, '127.0.0.1:22999', '--folder', 'f', '--json');
      expect(rj.code).not.toBe(0);
      expect(jsonError(rj).message).toMatch(/device id/i);
    }
    const listAfter = parseJsonOutput((await n.ferryOk('peer', 'list', '--json')));
    expect(listAfter).toEqual(listBefore);
  });

  it('a folder a peer offers is listed, can be declined, and once accepted (into a new directory) it syncs', async () => {
    const c = cluster.get();
    const [giver, taker] = [await c.createNode('giver'), await c.createNode('taker')];
    await giver.addFolder('gift');
    await giver.addPeer(taker, ['gift']);
    await taker.addPeer(giver, []);
    const text = uniqueText('a gift');
    await writeFile(giver.file('gift', 'card.txt'), text);
    await giver.start();
    await taker.start();

    const offers = await waitFor(async () => {
      const r = parseJsonOutput<{ pendingFolders: { folderId: string; deviceId: string }[] }>(await taker.ferryOk('status', '--json'));
      return r.pendingFolders.length ? r.pendingFolders : undefined;
    }, { message: 'the offer of folder gift listed by the taker' });
    expect(offers.map((o) => [o.folderId, o.deviceId])).toEqual([['gift', giver.deviceId]]);
    expect((await taker.ferryOk('status')).stdout).toMatch(/Folders offered by peers[^\n]*\n\s+gift from/);

    // Bad acceptances change nothing.
    const target = taker.folderPath('gift');
    mkdirSync(path.dirname(target), { recursive: true }); // its parent must exist
    const unknown = await taker.ferry('folder', 'accept', 'nothing', target, '--json');
    expect(jsonError(unknown).code).toBe('UNKNOWN_FOLDER');
    const noPath = await taker.ferry('folder', 'accept', 'gift', '--json');
    expect(jsonError(noPath).code).toBe('INVALID_CONFIG');
    const insideHome = await taker.ferry('folder', 'accept', 'gift', path.join(taker.home, 'gift'), '--json');
    expect(jsonError(insideHome).code).toBe('INVALID_PATH');
    expect(await exists(path.join(taker.home, 'gift'))).toBe(false);
    expect(await exists(target)).toBe(false);
    expect(parseJsonOutput<unknown[]>(await taker.ferryOk('folder', 'list', '--json'))).toEqual([]);

    // Declined: no longer listed; accepting it later still works.
    expect(jsonError(await taker.ferry('folder', 'decline', 'nothing', '--json')).code).toBe('UNKNOWN_FOLDER');
    await taker.ferryOk('folder', 'decline', 'gift');
    expect(parseJsonOutput<{ pendingFolders: unknown[] }>(await taker.ferryOk('status', '--json')).pendingFolders).toEqual([]);

    const accepted = parseJsonOutput<{ id: string; path: string; accepted: string[] }>(await taker.ferryOk('folder', 'accept', 'gift', target, '--json'));
    expect(accepted).toMatchObject({ id: 'gift', path: target, accepted: [giver.deviceId] });
    await waitForContent(taker, 'gift', 'card.txt', text);
    await waitConverged([giver, taker], 'gift');
    const after = parseJsonOutput<{ pendingFolders: unknown[] }>(await taker.ferryOk('status', '--json'));
    expect(after.pendingFolders).toEqual([]);
  });

  it('status of a running node, then of the stopped node (running false); SIGTERM is a clean stop', async () => {
    const c = cluster.get();
    const n = await c.createNode('stat');
    const peer = await c.createNode('statpeer'); // never started
    await n.addFolder('stuff');
    await n.addPeer(peer, ['stuff']);
    await n.start();

    const running = await waitFor(async () => {
      const s = await n.status();
      return s.running && s.folders.find((f) => f.id === 'stuff')?.state === 'idle' ? s : undefined;
    }, { message: 'status: running, folder stuff idle' });
    expect(running.deviceId).toBe(n.deviceId);
    expect(running.name).toBe('stat');
    expect(running.listen).toBe(n.address);
    const f = running.folders.find((x) => x.id === 'stuff')!;
    expect(f.path).toBe(n.folderPath('stuff'));
    expect(f.inSync).toBe(true);
    expect(f.sharedWith).toEqual([peer.deviceId]);
    expect(running.peers.map((p) => p.deviceId)).toEqual([peer.deviceId]);
    expect(running.peers[0]!.connected).toBe(false);
    expect(running.peers[0]!.addresses).toContain(peer.address);
    // `ferry start` prints the device ID and the address it listens on.
    const log = await n.log();
    expect(log).toContain(n.deviceId);
    expect(log).toContain(n.address);

    const exit = await n.stop();
    expect(exit, 'clean stop on SIGTERM').toEqual({ code: 0, signal: null });

    const r = await n.ferry('status', '--json');
    expect(r.code, describeRun(r, 'status must work when the node is stopped')).toBe(0);
    const s = parseJsonOutput<Awaited<ReturnType<typeof n.status>>>(r);
    expect(s.running).toBe(false);
    expect(s.deviceId).toBe(n.deviceId);
    expect(s.folders.map((x) => x.id)).toEqual(['stuff']);
    expect(s.folders[0]!.state).toBe('stopped');
    expect(s.peers.map((p) => [p.deviceId, p.connected])).toEqual([[peer.deviceId, false]]);

    const plain = await n.ferry('status');
    expect(plain.code, describeRun(plain, 'plain status when stopped')).toBe(0);
    expect(plain.stdout).toContain('stuff');
  });

  it('bin/ferry.js run as a program starts a node with the memory options of its shebang', async () => {
    const c = cluster.get();
    const n = await c.createNode('program');
    await n.start({ asProgram: true });
    await waitFor(async () => (await n.status()).running || undefined, { message: 'status: running' });
    const pid = n.proc!.pid!;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain('--max-semi-space-size=4');
    expect(argv).toContain('--initial-heap-size=48');
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(env).toContain('MALLOC_ARENA_MAX=2');
    expect(env).toContain('MALLOC_MMAP_THRESHOLD_=262144');
    expect(await n.stop(), 'clean stop on SIGTERM').toEqual({ code: 0, signal: null });
  });

  it('a folder added to a running pair is picked up without a restart and syncs', async () => {
    const [h1, h2] = await runningPair(['hot1', 'hot2'], 'first');
    const pids = [h1.proc!.pid, h2.proc!.pid];

    const one = uniqueText('first folder');
    await writeFile(h1.file('first', 'one.txt'), one);
    await waitForContent(h2, 'first', 'one.txt', one);
    await waitConverged([h1, h2], 'first');

    // Now, while both run: a second folder, shared by repeating `peer add` with the new folder.
    for (const n of [h1, h2]) await n.addFolder('second');
    await h1.addPeer(h2, ['second']);
    await h2.addPeer(h1, ['second']);
    const two = uniqueText('second folder, added while running');
    await writeFile(h1.file('second', 'two.txt'), two);
    await writeFile(h2.file('second', 'back.txt'), 'from hot2\n');
    await waitForContent(h2, 'second', 'two.txt', two);
    await waitForContent(h1, 'second', 'back.txt', 'from hot2\n');
    await waitConverged([h1, h2], 'second');

    // The first folder is still shared (repeating peer add adds, it does not replace).
    const more = uniqueText('first folder again');
    await writeFile(h2.file('first', 'more.txt'), more);
    await waitForContent(h1, 'first', 'more.txt', more);

    expect([h1.proc!.pid, h2.proc!.pid]).toEqual(pids);
    expect(h1.running && h2.running).toBe(true);
    const s = await h1.status();
    expect(s.folders.map((f) => f.id).sort()).toEqual(['first', 'second']);
    expect(s.folders.find((f) => f.id === 'second')!.sharedWith).toEqual([h2.deviceId]);
  }, 120_000);

  it('folder rescan scans the running node\'s folders now and reports them; a second node on the same home is refused', async () => {
    const c = cluster.get();
    const n = await c.createNode('rescan');
    await n.addFolder('docs');
    await n.addFolder('pics');
    for (let i = 0; i < 5; i++) await writeFile(n.file('docs', `sub/f${i}.txt`), uniqueText(`file ${i}`));
    // Files modified within 2 s of a scan are hashed again by the next one (the racy rule).
    await sleep(2100);
    await n.start();
    await waitFor(async () => (await n.status()).folders.every((f) => f.state === 'idle') || undefined, { message: 'folders idle' });

    type Scan = { id: string; entries: number; hashed: number; changed: number; errors: number; ms: number };
    const one = parseJsonOutput<Scan[]>(await n.ferryOk('folder', 'rescan', 'docs', '--json'));
    expect(one.map((f) => [f.id, f.entries, f.hashed, f.changed, f.errors])).toEqual([['docs', 6, 0, 0, 0]]);
    expect(one[0]!.ms).toBeGreaterThanOrEqual(0);
    const all = parseJsonOutput<Scan[]>(await n.ferryOk('folder', 'rescan', '--json'));
    expect(all.map((f) => [f.id, f.entries]).sort()).toEqual([['docs', 6], ['pics', 0]]);
    const plain = await n.ferryOk('folder', 'rescan', 'pics');
    expect(plain.stdout).toMatch(/^pics: 0 entries checked, 0 hashed, 0 changed, 0 error\(s\), \d+\.\d\d s$/m);

    const unknown = await n.ferry('folder', 'rescan', 'nosuch', '--json');
    expect(unknown.code, describeRun(unknown, 'an unknown folder is an error')).not.toBe(0);
    expect(jsonError(unknown).code).toBe('UNKNOWN_FOLDER');

    const second = await runFerry(n.home, ['start', '--listen', `127.0.0.1:${n.port + 500}`], { sandbox: n.dir, timeoutMs: 20_000 });
    expect(second.code, describeRun(second, 'a second node on the same home must not start')).not.toBe(0);
    expect(second.stderr + second.stdout).toContain('another Ferry node is running with the home');
    expect(n.running, 'the first node keeps running').toBe(true);
    expect(parseJsonOutput<Scan[]>(await n.ferryOk('folder', 'rescan', 'docs', '--json'))[0]!.entries).toBe(6);

    expect(await n.stop()).toEqual({ code: 0, signal: null });
    const stopped = await n.ferry('folder', 'rescan', '--json');
    expect(stopped.code).not.toBe(0);
    expect(jsonError(stopped)).toMatchObject({ code: 'NOT_RUNNING' });
    expect(jsonError(stopped).message).toContain('ferry start');
  }, 90_000);

  it('a folder whose disk is not mounted is not synced, and its files are not deleted on the peer', async () => {
    const [a, b] = await runningPair(['mount1', 'mount2'], 'disk');
    const photo = uniqueText('photo');
    await writeFile(a.file('disk', 'photos/one.jpg'), photo);
    await waitForContent(b, 'disk', 'photos/one.jpg', photo);
    await waitConverged([a, b], 'disk');

    // The disk is unmounted: an empty directory is left where the folder was.
    const root = a.folderPath('disk');
    renameSync(root, `${root}.unmounted`);
    mkdirSync(root);
    type Scan = { id: string; errors: number };
    expect(parseJsonOutput<Scan[]>(await a.ferryOk('folder', 'rescan', 'disk', '--json'))[0]!.errors).toBe(1);
    const later = uniqueText('made on the peer meanwhile');
    await writeFile(b.file('disk', 'later.txt'), later);
    const stuck = await waitFor(async () => {
      const f = (await a.status()).folders.find((x) => x.id === 'disk');
      return f?.state === 'error' && f.errors.some((e) => e.message.includes('.ferry-folder is missing')) ? f : undefined;
    }, { message: 'the unmounted folder reported as an error' });
    expect(stuck.inSync).toBe(false);
    expect((await a.ferryOk('status')).stdout).toMatch(/error: \.: .*\.ferry-folder is missing/);
    await sleep(1500); // time enough for a deletion or a pull to happen, if one were going to
    expect(readFileSync(b.file('disk', 'photos/one.jpg'), 'utf8')).toBe(photo);
    expect(readdirSync(root)).toEqual([]); // nothing pulled into the mount point

    // Mounted again: it catches up with what the peer made, and nothing was lost anywhere.
    rmSync(root, { recursive: true });
    renameSync(`${root}.unmounted`, root);
    await a.ferryOk('folder', 'rescan', 'disk');
    await waitForContent(a, 'disk', 'later.txt', later);
    await waitConverged([a, b], 'disk');
    expect(readFileSync(b.file('disk', 'photos/one.jpg'), 'utf8')).toBe(photo);
  }, 90_000);

  it('a node whose home path is too long for a control socket still runs, and says what it lacks', async () => {
    const c = cluster.get();
    const n = await c.createNode('longhome');
    const home = path.join(n.dir, 'a-home-directory-with-a-name-long-enough'.repeat(3));
    const r = await runFerry(home, ['start', '--listen', `127.0.0.1:${n.port}`], { sandbox: n.dir, timeoutMs: 6000 });
    const out = r.stdout + r.stderr;
    expect(r.signal, describeRun(r, 'the node must keep running until the test stops it')).toBe('SIGKILL');
    expect(out).toContain('Listening on 127.0.0.1:');
    expect(out).toContain('too long for a control socket');
    const rescan = await runFerry(home, ['folder', 'rescan', '--json'], { sandbox: n.dir });
    expect(rescan.code).not.toBe(0);
    expect(jsonError(rescan).message).toContain('too long for the control socket');
  }, 60_000);

  it('a paused folder is neither pulled nor scanned, and it catches up when resumed', async () => {
    const [p1, p2] = await runningPair(['pause1', 'pause2'], 'calm');
    const first = uniqueText('before the pause');
    await writeFile(p1.file('calm', 'first.txt'), first);
    await waitForContent(p2, 'calm', 'first.txt', first);

    const paused = parseJsonOutput<{ paused: boolean }>(await p2.ferryOk('folder', 'pause', 'calm', '--json'));
    expect(paused.paused).toBe(true);
    await waitFor(async () => (await p2.status()).folders[0]?.state === 'paused' || undefined, { message: 'the folder shows as paused' });
    expect((await p2.ferryOk('status')).stdout).toMatch(/calm .* paused/);
    const during = uniqueText('written on the peer while paused');
    const local = uniqueText('written here while paused');
    await writeFile(p1.file('calm', 'during.txt'), during);
    await writeFile(p2.file('calm', 'local.txt'), local);
    await sleep(3000);
    expect(await exists(p2.file('calm', 'during.txt'))).toBe(false);
    expect(await exists(p1.file('calm', 'local.txt'))).toBe(false);
    // The peer stopped sending the paused folder's index: nothing was refused as not shared.
    expect(await p2.log()).not.toContain('is not shared with');

    expect((await p2.ferryOk('folder', 'resume', 'calm')).stdout).toContain('Folder calm resumed');
    await waitForContent(p2, 'calm', 'during.txt', during);
    await waitForContent(p1, 'calm', 'local.txt', local);
    await waitConverged([p1, p2], 'calm');
    const unknown = await p2.ferry('folder', 'pause', 'nosuch', '--json');
    expect(jsonError(unknown).code).toBe('UNKNOWN_FOLDER');
  }, 60_000);

  it('folder set changes a folder\'s settings; a running node applies them at once', async () => {
    const c = cluster.get();
    const n = await c.createNode('settings');
    await n.addFolder('docs');
    // A version from five days ago: kept for 30 days (the default), not for 1.
    const stamp = new Date(Date.now() - 5 * 86_400_000).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const version = n.file('docs', `.ferry-versions/old~${stamp}.txt`);
    await writeFile(version, 'an old version\n');
    await n.start();
    await waitFor(async () => (await n.status()).folders[0]?.state === 'idle' || undefined, { message: 'folder idle' });
    expect(await exists(version)).toBe(true);

    const set = parseJsonOutput<{ versionsKeepDays: number; rescanSeconds: number }>(await n.ferryOk('folder', 'set', 'docs', '--keep-versions', '1', '--json'));
    expect(set).toMatchObject({ versionsKeepDays: 1, rescanSeconds: 600 });
    await waitFor(async () => !(await exists(version)) || undefined, { message: 'the running node prunes with the new setting' });
    expect((await n.ferryOk('folder', 'set', 'docs', '--rescan', '60')).stdout).toContain('versions kept 1 day(s), full rescan every 60 s');

    for (const [args, code] of [[['folder', 'set', 'docs'], 'INVALID_CONFIG'], [['folder', 'set', 'nosuch', '--rescan', '5'], 'UNKNOWN_FOLDER'], [['folder', 'set', 'docs', '--rescan', '0'], 'INVALID_CONFIG']] as const) {
      const r = await n.ferry(...args, '--json');
      expect(r.code, describeRun(r, 'must fail')).not.toBe(0);
      expect(jsonError(r).code).toBe(code);
    }
    expect(parseJsonOutput<{ versionsKeepDays: number; rescanSeconds: number }[]>(await n.ferryOk('folder', 'list', '--json'))[0]).toMatchObject({ versionsKeepDays: 1, rescanSeconds: 60 });
  }, 60_000);
});

describe('the version area from the command line', () => {
  it('lists what sync replaced, and restores it as a new edit that reaches the peer; refuses what it cannot do', async () => {
    const [a, b] = await runningPair(['vera', 'verb'], 'kept');
    await writeFile(a.file('kept', 'notes/plan.txt'), 'the first plan\n');
    await waitForContent(b, 'kept', 'notes/plan.txt', 'the first plan\n');
    await writeFile(a.file('kept', 'notes/plan.txt'), 'a worse plan\n');
    await waitForContent(b, 'kept', 'notes/plan.txt', 'a worse plan\n');

    const listed = parseJsonOutput<{ path: string; size: number; stored: string; replacedAt: string }[]>(await b.ferryOk('versions', 'kept', '--json'));
    expect(listed).toEqual([{ path: 'notes/plan.txt', size: 15, stored: expect.stringMatching(/^\.ferry-versions\/notes\/plan~\d{8}-\d{6}\.txt$/), replacedAt: expect.any(String), replacedAtMs: expect.any(Number) }]);
    const when = listed[0]!.replacedAt.slice(0, 19).replace('T', ' ');
    expect((await b.ferryOk('versions', 'kept', 'notes')).stdout).toBe(`${when} UTC  ${'15 B'.padStart(10)}  notes/plan.txt\n`);

    const restored = await b.ferryOk('restore', 'kept', 'notes/plan.txt', '--at', when);
    expect(restored.stdout).toMatch(new RegExp(`^Restored notes/plan.txt as it was until ${when} UTC; what was there is kept as \\.ferry-versions/notes/plan~\\d{8}-\\d{6}(-1)?\\.txt\\n$`));
    expect(readFileSync(b.file('kept', 'notes/plan.txt'), 'utf8')).toBe('the first plan\n');
    await waitForContent(a, 'kept', 'notes/plan.txt', 'the first plan\n');
    // Both sides keep the worse plan too: B as the file it restored over, A as the file sync replaced.
    for (const n of [a, b]) {
      const kept = parseJsonOutput<{ stored: string }[]>(await n.ferryOk('versions', 'kept', 'notes/plan.txt', '--json'));
      expect(kept.map((v) => readFileSync(path.join(n.folderPath('kept'), v.stored), 'utf8'))).toContain('a worse plan\n');
    }

    for (const [args, code] of [
      [['restore', 'kept', 'notes/never.txt'], 'NOT_FOUND'],
      [['restore', 'kept', 'notes/plan.txt', '--at', '1999-01-01'], 'NOT_FOUND'],
      [['restore', 'kept', 'notes/plan.txt', '--at', 'yesterday'], 'INVALID_CONFIG'],
      [['restore', 'kept', '../escape.txt'], 'INVALID_PATH'],
      [['versions', 'nope'], 'UNKNOWN_FOLDER'],
    ] as const) {
      const r = await b.ferry(...args, '--json');
      expect(r.code, describeRun(r, `${args.join(' ')} must fail`)).not.toBe(0);
      expect(jsonError(r).code, describeRun(r, args.join(' '))).toBe(code);
    }
    expect(readFileSync(b.file('kept', 'notes/plan.txt'), 'utf8')).toBe('the first plan\n');

    // A directory deleted on the peer comes back whole; a file there now is left alone.
    await writeFile(a.file('kept', 'trip/day1.txt'), 'beach\n');
    await writeFile(a.file('kept', 'trip/photos/p1.txt'), 'sunset\n');
    await waitForContent(b, 'kept', 'trip/photos/p1.txt', 'sunset\n');
    rmSync(a.folderPath('kept') + '/trip', { recursive: true });
    await waitFor(async () => !(await exists(b.file('kept', 'trip'))), { message: 'trip/ to be deleted on B' });
    await writeFile(b.file('kept', 'trip/day1.txt'), 'written again meanwhile\n');
    const undeleted = parseJsonOutput<{ restored: { path: string }[]; skipped: string[] }>(await b.ferryOk('restore', 'kept', 'trip', '--json'));
    expect(undeleted).toMatchObject({ restored: [{ path: 'trip/photos/p1.txt' }], skipped: ['trip/day1.txt'] });
    await waitForContent(a, 'kept', 'trip/photos/p1.txt', 'sunset\n');
    await waitForContent(a, 'kept', 'trip/day1.txt', 'written again meanwhile\n');
  }, 90_000);

  it('rewinds a folder that a program damaged on the peer to a past time, and the rewind reaches the peer', async () => {
    const [a, b] = await runningPair(['rewa', 'rewb'], 'kept');
    await writeFile(a.file('kept', 'docs/report.txt'), 'the report\n');
    await writeFile(a.file('kept', 'docs/budget.txt'), 'the budget\n');
    await writeFile(a.file('kept', 'keep.txt'), 'untouched\n');
    for (const [f, text] of [['docs/report.txt', 'the report\n'], ['docs/budget.txt', 'the budget\n'], ['keep.txt', 'untouched\n']]) await waitForContent(b, 'kept', f!, text!);
    // Version stamps are whole seconds: the moment lies more than a second from both sides.
    await sleep(1100);
    const asOf = new Date().toISOString();
    await sleep(1100);
    // On A a program rewrites one file, deletes another and leaves a note; sync carries all of it to B.
    await writeFile(a.file('kept', 'docs/report.txt'), 'scrambled\n');
    rmSync(a.file('kept', 'docs/budget.txt'));
    await writeFile(a.file('kept', 'docs/READ-ME-NOW.txt'), 'pay up\n');
    await waitForContent(b, 'kept', 'docs/report.txt', 'scrambled\n');
    await waitForContent(b, 'kept', 'docs/READ-ME-NOW.txt', 'pay up\n');
    await waitFor(async () => !(await exists(b.file('kept', 'docs/budget.txt'))), { message: 'budget.txt to be deleted on B' });

    const dry = parseJsonOutput<{ dryRun: boolean; restored: { path: string }[]; changedSince: string[]; unchanged: number }>(
      await b.ferryOk('restore', 'kept', '--as-of', asOf, '--dry-run', '--json'),
    );
    expect(dry).toMatchObject({ dryRun: true, restored: [{ path: 'docs/budget.txt' }, { path: 'docs/report.txt' }], changedSince: ['docs/READ-ME-NOW.txt'], unchanged: 1 });
    expect(readFileSync(b.file('kept', 'docs/report.txt'), 'utf8')).toBe('scrambled\n');
    expect(await exists(b.file('kept', 'docs/budget.txt'))).toBe(false);

    for (const args of [['--as-of', 'soon'], ['--as-of', asOf, '--at', asOf], ['docs', '--dry-run'], []]) {
      const r = await b.ferry('restore', 'kept', ...args, '--json');
      expect(r.code, describeRun(r, `restore kept ${args.join(' ')} must fail`)).not.toBe(0);
      expect(jsonError(r).code).toBe('INVALID_CONFIG');
    }

    const done = await b.ferryOk('restore', 'kept', '--as-of', asOf);
    const when = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} UTC`;
    expect(done.stdout.split('\n')).toEqual([
      expect.stringMatching(/^Restored docs\/budget\.txt \(the version replaced at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)$/),
      expect.stringMatching(/^Restored docs\/report\.txt \(the version replaced at .* UTC\); what was there is kept as \.ferry-versions\/docs\/report~\d{8}-\d{6}(-1)?\.txt$/),
      '1 file(s) are as they were then',
      `Left as they are: 1 file(s) changed or created since ${when(asOf)} with no earlier version on this device (another device may keep one):`,
      '  docs/READ-ME-NOW.txt',
      '',
    ]);
    await waitForContent(a, 'kept', 'docs/report.txt', 'the report\n');
    await waitForContent(a, 'kept', 'docs/budget.txt', 'the budget\n');
    expect(readFileSync(a.file('kept', 'docs/READ-ME-NOW.txt'), 'utf8')).toBe('pay up\n');
    expect(readFileSync(b.file('kept', 'keep.txt'), 'utf8')).toBe('untouched\n');
  }, 90_000);
});

describe('send-only and receive-only folders', () => {
  it("hold back the peers' changes or this device's own; override and revert settle them; back to both ways, what was held back is sent", async () => {
    const [a, b] = await runningPair(['modea', 'modeb'], 'kept');
    const folderOf = async (n: FerryNode) => folderStatus(await n.status(), 'kept')!;
    const setMode = async (mode: string) => {
      await b.ferryOk('folder', 'set', 'kept', '--mode', mode);
      await waitFor(async () => (await folderOf(b)).mode === mode, { message: `B's folder to be ${mode}` });
    };
    const versionsOn = async (n: FerryNode) =>
      parseJsonOutput<{ stored: string }[]>(await n.ferryOk('versions', 'kept', '--json')).map((v) => readFileSync(path.join(n.folderPath('kept'), v.stored), 'utf8'));
    const progressOf = async (n: FerryNode, peer: FerryNode) => (await n.status()).peers.find((p) => p.deviceId === peer.deviceId)!.folders![0]!;
    await writeFile(a.file('kept', 'plan.txt'), 'v1\n');
    await waitForContent(b, 'kept', 'plan.txt', 'v1\n');
    await waitFor(async () => (await progressOf(a, b)).upToDate, { message: "A to see that B has all of A's state" });

    // B holds the master copy: an edit on A is not applied on B.
    await setMode('send-only');
    await writeFile(a.file('kept', 'plan.txt'), 'v2 from A\n');
    await waitFor(async () => (await folderOf(b)).notApplied === 1, { message: "B to count A's edit as not applied" });
    expect(await folderOf(b)).toMatchObject({ inSync: false, needFiles: 0, notSent: 0 });
    expect((await b.ferryOk('status')).stdout).toContain("1 change(s) from peers not applied here (`ferry folder override kept` makes this device's copy win)");
    expect(readFileSync(b.file('kept', 'plan.txt'), 'utf8')).toBe('v1\n');
    expect((await b.ferryOk('folder', 'override', 'kept')).stdout).toBe("1 path(s) of kept now win over the peers' changes:\n  plan.txt\n");
    await waitForContent(a, 'kept', 'plan.txt', 'v1\n');
    expect(await versionsOn(a)).toContain('v2 from A\n');
    await waitFor(async () => (await folderOf(b)).inSync, { message: 'B in sync after the override' });

    // B only receives: its own edits stay on B, A's still arrive.
    await setMode('receive-only');
    await writeFile(b.file('kept', 'plan.txt'), 'edited on B\n');
    await writeFile(b.file('kept', 'b-only.txt'), 'B only\n');
    await waitFor(async () => (await folderOf(b)).notSent === 2, { message: 'B to hold back its two changes' });
    await writeFile(a.file('kept', 'news.txt'), 'from A\n');
    await waitForContent(b, 'kept', 'news.txt', 'from A\n');
    // What B holds back is not counted as missing on A.
    await waitFor(async () => (await progressOf(b, a)).upToDate, { message: "B to see that A has all B sends" });
    expect((await b.ferryOk('status')).stdout).toContain('    kept: has everything this device has\n');
    expect(readFileSync(a.file('kept', 'plan.txt'), 'utf8')).toBe('v1\n');
    expect(await exists(a.file('kept', 'b-only.txt'))).toBe(false);
    const reverted = parseJsonOutput<{ paths: string[] }>(await b.ferryOk('folder', 'revert', 'kept', '--json'));
    expect(reverted.paths).toEqual(['b-only.txt', 'plan.txt']);
    await waitForContent(b, 'kept', 'plan.txt', 'v1\n');
    expect(await exists(b.file('kept', 'b-only.txt'))).toBe(false);
    expect(await versionsOn(b)).toEqual(expect.arrayContaining(['edited on B\n', 'B only\n']));

    // Back to both ways, even with the node stopped meanwhile: what was made while receive-only goes out.
    await writeFile(b.file('kept', 'later.txt'), 'held back\n');
    await waitFor(async () => (await folderOf(b)).notSent === 1, { message: 'B to hold back later.txt' });
    // A's next file reaches B and B announces it: A has then seen B's index past later.txt.
    await writeFile(a.file('kept', 'after.txt'), 'after\n');
    await waitForContent(b, 'kept', 'after.txt', 'after\n');
    await waitFor(async () => (await progressOf(a, b)).upToDate, { message: "A to see after.txt in B's index" });
    expect(await exists(a.file('kept', 'later.txt'))).toBe(false);
    await b.stop();
    await b.ferryOk('folder', 'set', 'kept', '--mode', 'send-receive');
    await b.start();
    await waitForContent(a, 'kept', 'later.txt', 'held back\n');

    for (const args of [['folder', 'set', 'kept', '--mode', 'mirror'], ['folder', 'override', 'kept'], ['folder', 'revert', 'kept']]) {
      const r = await b.ferry(...args, '--json');
      expect(r.code, describeRun(r, `${args.join(' ')} must fail`)).not.toBe(0);
      expect(jsonError(r).code).toBe('INVALID_CONFIG');
    }
  }, 120_000);
});

describe('pausing a peer', () => {
  it('disconnects it; it is neither dialed nor let in until resumed, and then what changed meanwhile arrives both ways', async () => {
    const [a, b] = await runningPair(['pausa', 'pausb'], 'kept');
    const peerOf = async (n: FerryNode, other: FerryNode) => (await n.status()).peers.find((p) => p.deviceId === other.deviceId)!;
    await writeFile(a.file('kept', 'one.txt'), 'one\n');
    await waitForContent(b, 'kept', 'one.txt', 'one\n');

    expect((await a.ferryOk('peer', 'pause', b.deviceId)).stdout).toBe(`Peer ${b.deviceId} paused\n`);
    await waitFor(async () => !(await peerOf(a, b)).connected && !(await peerOf(b, a)).connected, { message: 'both sides to be disconnected' });
    expect(await peerOf(a, b)).toMatchObject({ paused: true, connected: false });
    expect((await a.ferryOk('status')).stdout).toContain('paused (`ferry peer resume` syncs with it again)');
    await writeFile(a.file('kept', 'two.txt'), 'two\n');
    await writeFile(b.file('kept', 'three.txt'), 'three\n');
    await sleep(3000); // B dials A again meanwhile (after 1 s, then 2 s) and is refused
    expect(await exists(b.file('kept', 'two.txt'))).toBe(false);
    expect(await exists(a.file('kept', 'three.txt'))).toBe(false);
    expect((await peerOf(b, a)).connected).toBe(false);

    expect((await a.ferryOk('peer', 'resume', b.deviceId)).stdout).toBe(`Peer ${b.deviceId} resumed\n`);
    await waitForContent(b, 'kept', 'two.txt', 'two\n');
    await waitForContent(a, 'kept', 'three.txt', 'three\n');
    expect(await peerOf(a, b)).toMatchObject({ paused: false, connected: true });

    const stranger = await cluster.get().createNode('pausc');
    const r = await a.ferry('peer', 'pause', stranger.deviceId, '--json');
    expect(r.code, describeRun(r, 'pausing a device that is no peer must fail')).not.toBe(0);
    expect(jsonError(r).code).toBe('UNKNOWN_DEVICE');
  }, 60_000);
});
