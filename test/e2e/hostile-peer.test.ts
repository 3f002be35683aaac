/**
 * A hostile peer: a device the node trusts (it was added with `ferry peer add`) but that
 * speaks the protocol maliciously, in-process, over a real TLS/WebSocket connection made with
 * dialPeer. It announces records that try to escape the folder or break the node's
 * invariants, sends malformed and oversized frames, and serves a block with the wrong bytes.
 * The node must reject all of it with clear warnings, write nothing anywhere it should not,
 * keep running and keep syncing with honest peers, and fetch the corrupt block again from a
 * peer that serves the right bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { shortDeviceId } from '../../src/core/device-id.js';
import { isFerryError, type FerryError } from '../../src/core/errors.js';
import type { BlockRef, FileRecord } from '../../src/core/file-record.js';
import { tempName } from '../../src/engine/puller.js';
import { packBlocks } from '../../src/index-store/block-codec.js';
import type { Message } from '../../src/protocol/connection.js';
import { encodeRecords, PROTOCOL_VERSION, recordMeta } from '../../src/protocol/messages.js';
import { dialPeer } from '../../src/transport/dial.js';
import { MAX_FRAME_BYTES } from '../../src/transport/frame.js';
import { createIdentity, type Identity } from '../../src/transport/identity.js';
import type { WsPeerConnection } from '../../src/transport/ws-connection.js';
import {
  exists,
  folderStatus,
  KiB,
  MiB,
  sha256,
  sleep,
  uniqueText,
  useCluster,
  waitFor,
  waitForContent,
  withLogsOnError,
  writeFile,
  type FerryNode,
} from './harness.js';

const cluster = useCluster('hostile');
const FOLDER = 'docs';
/** After the positive signal, how much longer to wait before asserting that nothing happened. */
const SETTLE_MS = 1500;

// ---------------------------------------------------------------------------------------------
// Helpers

interface LogEntry {
  level: number;
  msg: string;
  raw: string;
  /** Every string value in the entry (nested), for "does this line mention X". */
  strings: string[];
}

/** The node's log as parsed pino JSON lines (other lines, like the harness's banners, skipped). */
async function logEntries(node: FerryNode): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const raw of (await node.log()).split('\n')) {
    if (!raw.startsWith('{')) continue;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      continue;
    }
    const strings: string[] = [];
    const collect = (v: unknown): void => {
      if (typeof v === 'string') strings.push(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v === 'object') Object.values(v).forEach(collect);
    };
    collect(obj);
    out.push({ level: Number(obj.level ?? 0), msg: String(obj.msg ?? ''), raw, strings });
  }
  return out;
}

const WARN = 40;
const mentions = (e: LogEntry, needle: string) => e.strings.some((s) => s.includes(needle));

/**
 * Every entry under `root` (recursively), as relative path → description: 'dir', 'file <sha256>',
 * 'symlink <target>'. Used to prove that nothing appeared or changed anywhere.
 */
async function listTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(abs: string, rel: string): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(abs);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      let st: fs.Stats;
      try {
        st = await fsp.lstat(a);
      } catch {
        continue; // vanished while walking (the node's own short-lived files)
      }
      if (st.isDirectory()) {
        out.set(r, 'dir');
        await walk(a, r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `symlink ${await fsp.readlink(a)}`);
      } else if (st.isFile()) {
        const data = await fsp.readFile(a).catch(() => undefined);
        out.set(r, data ? `file ${st.size} B ${sha256(data)}` : 'file (unreadable)');
      } else {
        out.set(r, 'other');
      }
    }
  }
  await walk(root, '');
  return out;
}

/** Differences between two listings, except paths `allowed` accepts. */
function treeChanges(before: Map<string, string>, after: Map<string, string>, allowed: (rel: string) => boolean): string[] {
  const lines: string[] = [];
  for (const k of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    if (before.get(k) === after.get(k) || allowed(k)) continue;
    lines.push(`  ${JSON.stringify(k)}: before=${before.get(k) ?? 'absent'} after=${after.get(k) ?? 'absent'}`);
  }
  return lines;
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest();

/** A raw index payload: u32 JSON length, the JSON (any shape), then the given packed bytes. */
function rawPayload(meta: unknown, packed: Buffer[] = [], jsonText?: string): Buffer {
  const json = Buffer.from(jsonText ?? JSON.stringify(meta));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.length);
  return Buffer.concat([head, json, ...packed]);
}

const metaOf = recordMeta;

/**
 * The hostile side of one connection: dials the node, answers its block requests from
 * `serve` (hash hex → bytes), records the requests it got, and keeps what the node sent.
 */
class HostilePeer {
  readonly requests: { hash: string; path: string; offset: number; size: number }[] = [];
  readonly received: Message[] = [];
  closeReason: Error | undefined;
  closed = false;
  ws?: WebSocket;

  private constructor(
    readonly conn: WsPeerConnection,
    private serve: Map<string, Buffer>,
  ) {
    conn.onMessage((m) => this.received.push(m));
    type Range = { path?: unknown; offset?: unknown; blocks?: { size: number; hash: string }[] };
    // The node asks for consecutive blocks together: {type:'range', path, offset, blocks:[{size, hash}]},
    // and for small files' ranges several at a time: {type:'ranges', items:[range, ...]}.
    const serveRange = (h: Range): Buffer => {
      if (!Array.isArray(h.blocks)) throw new Error('hostile peer: a range without blocks');
      let offset = Number(h.offset);
      const parts = h.blocks.map((b) => {
        this.requests.push({ hash: String(b.hash), path: String(h.path), offset, size: Number(b.size) });
        offset += Number(b.size);
        const data = this.serve.get(String(b.hash));
        if (!data) throw new Error(`hostile peer has no block ${String(b.hash)}`);
        return data;
      });
      return Buffer.concat(parts);
    };
    conn.onRequest(async (m) => {
      const h = m.header as Range & { type?: unknown; items?: Range[] };
      if (h.type === 'range') return { header: { type: 'range' }, payload: serveRange(h) };
      if (h.type !== 'ranges' || !Array.isArray(h.items)) throw new Error(`hostile peer cannot answer ${String(h.type)}`);
      const parts = h.items.map(serveRange);
      return { header: { type: 'ranges', sizes: parts.map((p) => p.length), errors: {} }, payload: Buffer.concat(parts) };
    });
    conn.onClose((reason) => {
      this.closed = true;
      this.closeReason = reason;
    });
  }

  static async dial(node: FerryNode, identity: Identity, serve: Map<string, Buffer>): Promise<HostilePeer> {
    const conn = await dialPeer({ address: node.address, expectedDeviceId: node.deviceId, identity, connectTimeoutMs: 10_000 });
    return new HostilePeer(conn, serve);
  }

  /** Sends the hello, and keeps the raw WebSocket under the connection (for frames the API refuses to build). */
  hello(indexId: string, maxSequence: number): void {
    const spy = vi.spyOn(WebSocket.prototype, 'send');
    try {
      this.conn.send({
        header: {
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          name: 'hostile',
          folders: [{ id: FOLDER, indexId, maxSequence, haveIndexId: '', haveSequence: 0 }],
        },
      });
      this.ws = spy.mock.contexts.at(-1) as WebSocket | undefined;
    } finally {
      spy.mockRestore();
    }
  }

  index(payload: Buffer | undefined, folder = FOLDER): void {
    this.conn.send(payload === undefined ? { header: { type: 'index', folder } } : { header: { type: 'index', folder }, payload });
  }

  requestsFor(hash: Buffer): number {
    const hex = hash.toString('hex');
    return this.requests.filter((r) => r.hash === hex).length;
  }
}

// ---------------------------------------------------------------------------------------------

describe('a hostile peer', () => {
  let node: FerryNode;
  let hostileId: Identity;
  let hostileShort: string;
  let folder: string;
  let outside: string;
  const indexId = randomBytes(8).toString('hex');

  // The valid record whose second block the hostile peer first serves with the wrong bytes.
  const good0 = randomBytes(64 * KiB);
  const good1 = randomBytes(48 * KiB);
  const garbage1 = randomBytes(good1.length);
  const goodContent = Buffer.concat([good0, good1]);
  let goodRecord: FileRecord;
  let first: HostilePeer;

  // What the node's folder, the folder's sibling and the whole temp dir held before the attack.
  let folderBefore: Map<string, string>;
  let outsideBefore: Map<string, string>;
  let rootBefore: Map<string, string>;
  let maxSequence = 0;
  /** Log markers of the records that must be rejected one by one (a substring of their path). */
  const rejectedMarkers: string[] = [];
  /** Whole messages that must be rejected (each should produce a warning). */
  let malformedMessages = 0;

  // Content the hostile peer would happily serve for every record it announces.
  const evil = Buffer.from('EVIL CONTENT written by a hostile peer\n');
  const evilBlock: BlockRef = { hash: sha(evil), size: evil.length };
  const serve = new Map<string, Buffer>([
    [evilBlock.hash.toString('hex'), evil],
    [sha(good0).toString('hex'), good0],
    [sha(good1).toString('hex'), garbage1], // the wrong bytes
  ]);

  beforeAll(async () => {
    const c = await cluster.ready;
    await withLogsOnError(c, async () => {
      hostileId = await createIdentity('hostile');
      hostileShort = shortDeviceId(hostileId.deviceId);
      node = await c.createNode('target');
      folder = await node.addFolder(FOLDER);
      outside = path.join(path.dirname(folder), 'outside');
      await writeFile(path.join(folder, 'readme.txt'), uniqueText('readme'));
      await writeFile(path.join(folder, 'sub', 'data.bin'), randomBytes(200 * KiB));
      await writeFile(path.join(folder, 'sub', 'deeper', 'notes.md'), uniqueText('notes'));
      await writeFile(path.join(outside, 'canary.txt'), uniqueText('canary: must never change'));
      // The hostile device is known and shares the folder, at an address nobody listens on.
      await node.ferryOk('peer', 'add', hostileId.deviceId, '127.0.0.1:1', '--folder', FOLDER, '--name', 'hostile');
      await node.start();
      // The node has indexed its folder before the attack starts.
      await waitFor(async () => (folderStatus(await node.status(), FOLDER)?.localFiles ?? 0) >= 3, {
        message: 'the node to index its 3 files',
      });
      folderBefore = await listTree(folder);
      outsideBefore = await listTree(outside);
      rootBefore = await listTree(c.root);
    });
  }, 60_000);

  function rec(p: string, seq: number, over: Partial<FileRecord> = {}): FileRecord {
    return {
      path: p,
      type: 'file',
      size: evil.length,
      mtimeMs: Date.now(),
      mode: 0o644,
      deleted: false,
      version: { [hostileShort]: 1_800_000_000 },
      modifiedBy: hostileShort,
      sequence: seq,
      blocks: [evilBlock],
      ...over,
    };
  }

  it('rejects every malformed record and message with a warning and writes nothing', async () => {
    expect(fs.existsSync('/etc/evil'), '/etc/evil exists before the test; cannot check that the node does not create it').toBe(false);
    first = await HostilePeer.dial(node, hostileId, serve);

    // Records that are each invalid in exactly one way (everything else about them is fine,
    // and the hostile peer would serve their content).
    let seq = 0;
    const bad: FileRecord[] = [
      rec('../outside/evil.txt', ++seq),
      rec('/etc/evil', ++seq),
      rec('a/../../evil', ++seq),
      rec('../../../evil-root', ++seq),
      rec('nul\0evil.txt', ++seq),
      rec('nfd-cafe\u0301.txt', ++seq), // 'é' as e + combining acute: not NFC
      rec('.ferry-versions/evil.txt', ++seq),
      rec(`.ferry.tmp.${tempName('good.txt').slice('.ferry.tmp.'.length)}`, ++seq), // good.txt's own temp file
      rec('sub/.ferry/evil.txt', ++seq),
      rec('badsize.txt', ++seq, { size: 1000 }), // blocks add up to less
      rec('badsize-more.txt', ++seq, { size: 5 }), // blocks add up to more
      rec('hugemtime.txt', ++seq, { mtimeMs: 1e300 }),
      rec('badversion-path.txt', ++seq, { version: { '../../x': 1 } }),
      rec('badversion-dash.txt', ++seq, { version: { 'x/../../outside': 2 } }),
      rec('badversion-negative.txt', ++seq, { version: { [hostileShort]: -5 } }),
      rec('badmodifiedby.txt', ++seq, { modifiedBy: 'x/../../outside' }),
      rec('dir-with-blocks', ++seq, { type: 'dir', size: evil.length }),
    ];
    rejectedMarkers.push(
      '../outside/evil.txt',
      '/etc/evil',
      'a/../../evil',
      '../../../evil-root',
      'nul\0evil.txt',
      'nfd-cafe',
      '.ferry-versions/evil.txt',
      tempName('good.txt'),
      'sub/.ferry/evil.txt',
      'badsize.txt',
      'badsize-more.txt',
      'hugemtime.txt',
      'badversion-path.txt',
      'badversion-dash.txt',
      'badversion-negative.txt',
      'badmodifiedby.txt',
      'dir-with-blocks',
    );
    goodRecord = rec('good.txt', ++seq, {
      size: goodContent.length,
      blocks: [
        { hash: sha(good0), size: good0.length },
        { hash: sha(good1), size: good1.length },
      ],
    });
    // Hand-encoded records for what encodeRecords cannot express.
    const protoSeq = ++seq;
    const protoRecord = rec('badversion-proto.txt', protoSeq);
    const protoJson = JSON.stringify([metaOf(protoRecord)]).replace(
      `"version":${JSON.stringify(protoRecord.version)}`,
      `"version":{"__proto__":7,"${hostileShort}":1}`,
    );
    expect(protoJson).toContain('"__proto__":7');
    const zeroBlock = rec('zeroblock.txt', ++seq, { size: 0, blocks: [{ hash: sha(Buffer.alloc(0)), size: 0 }] });
    const hugeBlock = rec('hugeblock.txt', ++seq, { size: 0xffffffff, blocks: [{ hash: evilBlock.hash, size: 0xffffffff }] });
    const nanMtimeJson = JSON.stringify([metaOf(rec('nanmtime.txt', ++seq))]).replace(/"mtimeMs":[0-9.e+]+/, '"mtimeMs":"NaN"');
    rejectedMarkers.push('badversion-proto.txt', 'zeroblock.txt', 'hugeblock.txt', 'nanmtime.txt');
    maxSequence = seq;

    first.hello(indexId, maxSequence);
    expect(first.ws, 'could not capture the WebSocket under the connection').toBeInstanceOf(WebSocket);
    // One message with every bad record and the good one: the bad ones are dropped one by one.
    first.index(encodeRecords([...bad, goodRecord]));
    first.index(rawPayload(undefined, [packBlocks(protoRecord.blocks)], protoJson));
    first.index(encodeRecords([zeroBlock]));
    first.index(encodeRecords([hugeBlock]));
    first.index(rawPayload(undefined, [packBlocks([evilBlock])], nanMtimeJson));

    // Whole messages that are malformed.
    const evilMeta = metaOf(rec('../outside/evil-message.txt', ++seq));
    const malformed: Buffer[] = [
      Buffer.from([0, 0]), // shorter than the length prefix
      rawPayload(undefined, [], '[').subarray(0, 3), // cut inside the prefix
      (() => {
        const p = rawPayload([evilMeta], [packBlocks([evilBlock])]);
        p.writeUInt32BE(p.length * 2, 0); // JSON length runs past the end
        return p;
      })(),
      rawPayload(undefined, [], '{not json'),
      rawPayload({ path: 'not-a-list.txt' }), // not a list
      rawPayload([{ ...evilMeta, blocks: 5 }], [packBlocks([evilBlock])]), // block list shorter than announced
      rawPayload([{ ...evilMeta, blocks: -1 }], []), // negative block count
      rawPayload([{ ...evilMeta, blocks: 1 }], [packBlocks([evilBlock]), Buffer.from('trailing')]), // trailing bytes
      rawPayload([evilMeta], [packBlocks([evilBlock]).subarray(0, 20)]), // a block list cut mid-block
      rawPayload(Array.from({ length: 5001 }, () => evilMeta), Array.from({ length: 5001 }, () => packBlocks([evilBlock]))), // too many records
    ];
    for (const p of malformed) first.index(p);
    first.index(undefined); // an index message without a payload
    first.index(encodeRecords([rec('other-folder.txt', ++seq)]), 'not-shared-folder'); // a folder not shared with it
    first.conn.send({ header: { type: 'evil-unknown-type', folder: FOLDER, path: '../outside/evil-header.txt' } });
    first.conn.send({ header: { folder: FOLDER } }); // no type at all
    malformedMessages = malformed.length + 4;

    // The hostile peer also tries to read outside the folder through block requests: each one
    // must get an error reply from the node (not the bytes, not silence until a timeout).
    const canary = await fsp.readFile(path.join(outside, 'canary.txt'));
    const refusal = async (header: Record<string, unknown>): Promise<string> => {
      let reply: Message;
      try {
        reply = await first.conn.request({ header }, { timeoutMs: 10_000 });
      } catch (err) {
        expect(isFerryError(err) && err.data.remote === true, `expected an error reply to ${JSON.stringify(header)}, got ${String(err)}`).toBe(true);
        return (err as FerryError).code;
      }
      throw new Error(`the node answered ${JSON.stringify(header)} with ${reply.payload?.length ?? 0} bytes${reply.payload?.equals(canary) ? ' (the canary outside the folder!)' : ''}`);
    };
    for (const p of ['../outside/canary.txt', '/etc/passwd', 'sub/../../outside/canary.txt', 'nul\0.txt', '.ferry.tmp.x/../../outside/canary.txt']) {
      await refusal({ type: 'block', folder: FOLDER, path: p, offset: 0, size: canary.length, hash: sha256(canary) });
      await refusal({ type: 'range', folder: FOLDER, path: p, offset: 0, blocks: [{ size: canary.length, hash: sha256(canary) }] });
      // One bad range among good ones refuses the whole batch.
      const good = { path: 'readme.txt', offset: 0, blocks: [{ size: 1, hash: '0'.repeat(64) }] };
      await refusal({ type: 'ranges', folder: FOLDER, items: [good, { path: p, offset: 0, blocks: [{ size: canary.length, hash: sha256(canary) }] }] });
    }
    const tiny = { path: 'readme.txt', offset: 0, blocks: [{ size: 1, hash: '0'.repeat(64) }] };
    await refusal({ type: 'ranges', folder: FOLDER, items: Array(65).fill(tiny) });
    await refusal({ type: 'ranges', folder: FOLDER, items: [] });
    await refusal({ type: 'ranges', folder: FOLDER, items: Array(2).fill({ path: 'readme.txt', offset: 0, blocks: [{ size: 9 * MiB, hash: '0'.repeat(64) }] }) });
    await refusal({ type: 'ranges', folder: 'not-shared-folder', items: [tiny] });
    await refusal({ type: 'range', folder: FOLDER, path: 'readme.txt', offset: 0, blocks: Array(65).fill({ size: 1, hash: '0'.repeat(64) }) });
    await refusal({ type: 'range', folder: FOLDER, path: 'readme.txt', offset: 0, blocks: [{ size: 16 * MiB, hash: '0'.repeat(64) }, { size: 1, hash: '0'.repeat(64) }] });
    await refusal({ type: 'block', folder: 'not-shared-folder', path: 'readme.txt', offset: 0, size: 10, hash: '0'.repeat(64) });
    await refusal({ type: 'block', folder: FOLDER, path: 'readme.txt', offset: 0, size: 64 * MiB, hash: '0'.repeat(64) });
    await refusal({ type: 'evil-request', folder: FOLDER, path: 'readme.txt' });

    // The node pulls good.txt, gets the wrong bytes for its second block every time it asks,
    // and gives up on the file for now (it retries later).
    // (Or, if the node wrongly accepts the bytes, until good.txt appears: the checks below say so.)
    await waitFor(
      async () =>
        (await exists(path.join(folder, 'good.txt'))) ||
        (first.requestsFor(sha(good1)) >= 3 && folderStatus(await node.status(), FOLDER)?.errors.some((e) => e.path === 'good.txt')),
      {
        message: async () =>
          `the node to request the corrupt block of good.txt 3 times and report an error for good.txt (requests so far: ${JSON.stringify(first.requests)}; folder status: ${JSON.stringify(folderStatus(await node.status(), FOLDER))})`,
      },
    );
    await sleep(SETTLE_MS);

    const goodNow = await fsp.readFile(path.join(folder, 'good.txt')).catch(() => undefined);
    expect(
      goodNow === undefined,
      `good.txt exists (${goodNow?.length} B, ${goodNow?.subarray(good0.length).equals(garbage1) ? 'with the WRONG bytes the hostile peer served' : 'content ' + sha256(goodNow ?? '')}) although its second block never verified`,
    ).toBe(true);

    // Nothing outside the folder.
    expect(await listTree(outside), 'the folder\'s sibling outside/ changed').toEqual(outsideBefore);
    expect(fs.existsSync('/etc/evil'), '/etc/evil was created').toBe(false);
    for (const p of [path.join(path.dirname(folder), 'evil'), path.join(cluster.get().root, 'evil-root'), path.join(os.tmpdir(), 'evil-root')]) {
      expect(await exists(p), `${p} was created`).toBe(false);
    }
    // Nothing anywhere in the temp dir except the node's own state and its temp files.
    const rootAfter = await listTree(cluster.get().root);
    const nodeRel = path.relative(cluster.get().root, node.dir);
    const folderRel = path.relative(cluster.get().root, folder);
    const allowed = (rel: string) =>
      rel === `${nodeRel}/home` || rel.startsWith(`${nodeRel}/home/`) || rel === `${nodeRel}/node.log` || (rel.startsWith(`${folderRel}/`) && path.basename(rel).startsWith('.ferry.tmp.'));
    const changes = treeChanges(rootBefore, rootAfter, allowed);
    expect(changes, `unexpected changes under ${cluster.get().root}:\n${changes.join('\n')}`).toEqual([]);
    // The folder itself: byte for byte as before, apart from Ferry temp files.
    const folderAfter = await listTree(folder);
    const folderChanges = treeChanges(folderBefore, folderAfter, (rel) => path.basename(rel).startsWith('.ferry.tmp.'));
    expect(folderChanges, `the node's folder changed:\n${folderChanges.join('\n')}`).toEqual([]);
    // The wrong bytes never reached the disk, not even the temp file.
    const temp = path.join(folder, tempName('good.txt'));
    const tempBytes = await fsp.readFile(temp).catch(() => undefined);
    if (tempBytes) {
      expect(tempBytes.includes(garbage1.subarray(0, 4096)), `the corrupt block was written to ${temp}`).toBe(false);
    }

    // The log explains: one warning per rejected record (naming it), per bad message, and for the hash failures.
    const entries = await logEntries(node);
    const warnings = entries.filter((e) => e.level >= WARN);
    const unexplained = rejectedMarkers.filter((m) => !warnings.some((e) => mentions(e, m)));
    expect(
      unexplained,
      `no warning names these rejected records: ${JSON.stringify(unexplained)}\nwarnings:\n${warnings.map((e) => e.raw).join('\n')}`,
    ).toEqual([]);
    const hashWarnings = warnings.filter((e) => mentions(e, 'good.txt') && e.strings.some((s) => /hash/i.test(s)));
    expect(hashWarnings.length, `no warning says that a block of good.txt failed its hash\nwarnings:\n${warnings.map((e) => e.raw).join('\n')}`).toBeGreaterThanOrEqual(1);
    const aboutPeer = warnings.filter(
      (e) =>
        (mentions(e, hostileId.deviceId) || mentions(e, hostileShort)) &&
        !rejectedMarkers.some((m) => mentions(e, m)) &&
        !mentions(e, 'good.txt') &&
        !/dial|connect to|cannot connect/i.test(e.msg),
    );
    expect(
      aboutPeer.length,
      `expected at least ${malformedMessages} warnings about the peer's malformed messages, got ${aboutPeer.length}:\n${aboutPeer.map((e) => e.raw).join('\n')}`,
    ).toBeGreaterThanOrEqual(malformedMessages);
    expect(warnings.some((e) => mentions(e, 'evil-unknown-type')), 'no warning names the unknown message type').toBe(true);

    // Still running, and the connection survived all of the above (only frame-level garbage ends it).
    expect(node.running).toBe(true);
    expect((await node.status()).running).toBe(true);
    expect(first.closed, `the connection was closed: ${first.closeReason?.message}`).toBe(false);
  }, 60_000);

  it('closes the connection on a frame larger than the limit and keeps running', async () => {
    expect(first.closed, 'connection already closed').toBe(false);
    const ws = first.ws!;
    const header = Buffer.from(JSON.stringify({ kind: 'message', header: { type: 'index', folder: FOLDER } }));
    const payloadLength = MAX_FRAME_BYTES + 1; // > 24 MiB payload
    const prefix = Buffer.alloc(5);
    prefix[0] = 2; // has payload, not compressed
    prefix.writeUInt32BE(header.length, 1);
    const frame = Buffer.concat([prefix, header, Buffer.alloc(payloadLength, 0x41)]);
    expect(frame.length).toBeGreaterThan(24 * MiB);
    ws.send(frame, { binary: true }, () => undefined);
    await waitFor(() => first.closed, { timeoutMs: 15_000, message: 'the node to close the connection after a frame over 24 MiB' });
    expect(node.running).toBe(true);
    expect((await node.status()).running).toBe(true);
    const entries = await logEntries(node);
    expect(
      entries.some((e) => e.level >= WARN && e.strings.some((s) => /too large|larger than|MESSAGE_TOO_LARGE|limit/i.test(s))),
      'no warning or error in the log about the oversized frame',
    ).toBe(true);
    // A new connection from the same device is accepted again (the node did not crash or ban).
    expect(await listTree(outside)).toEqual(outsideBefore);
    expect(await exists(path.join(folder, 'good.txt')), 'good.txt exists (see the first test)').toBe(false);
  }, 60_000);

  it('still syncs with an honest node afterwards', async () => {
    const c = cluster.get();
    const honest = await c.createNode('honest');
    await honest.addFolder(FOLDER);
    await node.addPeer(honest, [FOLDER]);
    await honest.addPeer(node, [FOLDER]);
    await honest.start();
    const readme = await fsp.readFile(path.join(folder, 'readme.txt'));
    await waitForContent(honest, FOLDER, 'readme.txt', readme);
    await waitForContent(honest, FOLDER, 'sub/data.bin', await fsp.readFile(path.join(folder, 'sub', 'data.bin')));
    const text = uniqueText('from the honest node');
    await writeFile(honest.file(FOLDER, 'from-honest.txt'), text);
    await waitForContent(node, FOLDER, 'from-honest.txt', text);
    // Nothing of the hostile peer's leaked to the honest node either.
    expect(await exists(honest.file(FOLDER, 'good.txt')), 'good.txt reached the honest node before any peer served its right bytes').toBe(false);
    expect(await exists(path.join(path.dirname(honest.folderPath(FOLDER)), 'outside'))).toBe(false);
  }, 60_000);

  it('fetches the corrupt block again from a peer that serves the right bytes', async () => {
    expect(await exists(path.join(folder, 'good.txt')), 'good.txt exists before any peer served its right bytes (see the first test)').toBe(false);
    serve.set(sha(good1).toString('hex'), good1); // now the right bytes
    await waitFor(async () => !(await node.status()).peers.find((p) => p.deviceId === hostileId.deviceId)?.connected, {
      message: 'the node to drop the closed hostile connection',
    });
    const second = await HostilePeer.dial(node, hostileId, serve);
    second.hello(indexId, maxSequence);
    await waitForContent(node, FOLDER, 'good.txt', goodContent);
    expect(second.requestsFor(sha(good1)), 'the block that failed its hash was not requested again').toBeGreaterThanOrEqual(1);
    expect(sha256(await fsp.readFile(path.join(folder, 'good.txt')))).toBe(sha256(goodContent));
    // Still nothing outside, and none of the rejected records made it in meanwhile.
    expect(await listTree(outside)).toEqual(outsideBefore);
    const names = [...(await listTree(folder)).keys()].filter((k) => !path.basename(k).startsWith('.ferry.tmp.'));
    expect(names.sort()).toEqual([...folderBefore.keys(), 'good.txt', 'from-honest.txt'].sort());
    await waitFor(async () => !(await fsp.readdir(folder)).some((n) => n.startsWith('.ferry.tmp.')), {
      timeoutMs: 5000,
      message: 'the temp file of good.txt to be gone',
    });
    second.conn.close();
  }, 60_000);
});
