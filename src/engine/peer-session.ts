/**
 * The conversation with one connected peer: the hello that says which folders both share and
 * how much of each other's index each side already has, then index updates in both directions
 * (only what the other side has not seen; new changes pushed as they happen), and block
 * requests answered from the folder. Everything the peer sends is validated; a bad message is
 * logged and changes nothing.
 */
import { errorMessage, FerryError, isFerryError } from '../core/errors.js';
import type { FileRecord } from '../core/file-record.js';
import type { RateLimits } from '../core/rate-limiter.js';
import { isFolderId } from '../core/folder-id.js';
import type { FolderConfig } from '../index-store/config-types.js';
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import type { Message, PeerConnection } from '../protocol/connection.js';
import { joinPayload } from '../protocol/payload.js';
import {
  decodeRecords, encodeRecords, parseBlockRequest, parseHello, parseRangeRequest, parseRangesRequest, PROTOCOL_VERSION, type Hello, type RangesRequest,
} from '../protocol/messages.js';
import type { Logger } from './folder-context.js';
import type { FolderSync } from './folder-sync.js';
import { RangeFetcher } from './range-fetcher.js';

const INDEX_BATCH = 2000;
const MAX_BLOCKS_PER_MESSAGE = 4 * 1024 * 1024 / 36;

export interface SessionHost {
  readonly store: SqliteIndexStore;
  readonly name: string;
  readonly logger: Logger;
  /** Folders this node shares with the device. */
  sharedFolders(deviceId: string): FolderConfig[];
  folder(id: string): FolderSync | undefined;
  /** File data this node serves (`send`) and asks for (`receive`), paced node-wide when set. */
  readonly rates?: RateLimits;
}

export class PeerSession {
  /** Highest local sequence sent, per folder; absent until the peer's hello for that folder. */
  private readonly sent = new Map<string, number>();
  private readonly pumping = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly unsharedLogged = new Set<string>();
  /** The folders the peer's last hello listed. */
  private peerListed = new Set<string>();
  private helloSeen = false;

  /** Fetches file ranges from this peer, small ones batched. */
  readonly ranges: RangeFetcher;

  constructor(
    readonly conn: PeerConnection,
    private readonly host: SessionHost,
  ) {
    this.ranges = new RangeFetcher(conn, host.rates);
  }

  get deviceId(): string {
    return this.conn.deviceId;
  }

  /**
   * Whether the peer said it does not have the folder running (paused or not shared there):
   * its hello arrived and left the folder out. Until the hello arrives it may well have it.
   */
  lacks(folderId: string): boolean {
    return this.helloSeen && !this.peerListed.has(folderId);
  }

  start(): void {
    this.conn.onMessage((m) => this.handleMessage(m));
    this.conn.onRequest((m) => this.handleRequest(m));
    this.sendHello();
  }

  /** Tells the peer our folders again (after a configuration change). */
  sendHello(): void {
    const folders = this.host.sharedFolders(this.deviceId).map((f) => {
      const have = this.host.store.remoteIndex(f.id, this.deviceId);
      return {
        id: f.id,
        indexId: f.indexId,
        maxSequence: this.host.store.maxSequence(f.id),
        haveIndexId: have?.indexId ?? '',
        haveSequence: have?.maxSequence ?? 0,
      };
    });
    const shared = new Set(folders.map((f) => f.id));
    for (const id of [...this.sent.keys()]) if (!shared.has(id)) this.sent.delete(id);
    const sendRate = this.host.rates?.send?.bytesPerSecond ?? 0;
    this.conn.send({ header: { type: 'hello', protocol: PROTOCOL_VERSION, name: this.host.name, folders, ...(sendRate ? { sendRate } : {}) } });
  }

  /** Local records of `folderId` changed: send what the peer has not seen. */
  localChanged(folderId: string): void {
    if (this.sent.has(folderId)) void this.pump(folderId);
  }

  private handleMessage(m: Message): void {
    if (this.conn.closed) return;
    try {
      switch (m.header.type) {
        case 'hello':
          return this.handleHello(parseHello(m.header));
        case 'index':
          return this.handleIndex(String(m.header.folder), m.payload);
        default:
          throw new FerryError('INVALID_MESSAGE', `unknown message type ${JSON.stringify(m.header.type)}`);
      }
    } catch (err) {
      if (isFerryError(err)) {
        this.host.logger.warn({ peer: this.deviceId, err: errorMessage(err) }, 'rejected message from peer');
        return;
      }
      // Not the peer's fault (the index could not be written: a full disk), and the peer takes
      // the message for delivered. Only a new connection makes it send again from what is stored.
      this.host.logger.error({ peer: this.deviceId, err: errorMessage(err) }, 'cannot take in a message from peer; reconnecting to receive it again');
      this.conn.close(new FerryError('IO_ERROR', `cannot take in a message: ${errorMessage(err)}`));
    }
  }

  /** Serves a request for file data; with --max-send-rate, the reply waits for its turn. */
  private async handleRequest(m: Message): Promise<Message> {
    const reply = await this.serve(m);
    if (reply.payload && this.host.rates?.send) await this.host.rates.send.take(reply.payload.length);
    return reply;
  }

  private async serve(m: Message): Promise<Message> {
    if (m.header.type === 'range') {
      const req = parseRangeRequest(m.header);
      return { header: { type: 'range' }, payload: await this.sharedFolder(req.folder).serveRange(req) };
    }
    if (m.header.type === 'ranges') return this.serveRanges(parseRangesRequest(m.header));
    if (m.header.type !== 'block') throw new FerryError('INVALID_MESSAGE', `unknown request type ${JSON.stringify(m.header.type)}`);
    const req = parseBlockRequest(m.header);
    const folder = this.sharedFolder(req.folder);
    return { header: { type: 'block' }, payload: folder.serveBlock(req) };
  }

  /** Serves each range it can; one that fails is reported by its index, the others still go. */
  private async serveRanges(req: RangesRequest): Promise<Message> {
    const folder = this.sharedFolder(req.folder);
    const parts: Buffer[] = [];
    const sizes: number[] = [];
    const errors: Record<number, { code: string; message: string }> = {};
    for (const [i, item] of req.items.entries()) {
      try {
        const data = await folder.serveRange(item);
        parts.push(data);
        sizes.push(data.length);
      } catch (err) {
        sizes.push(-1);
        errors[i] = { code: isFerryError(err) ? err.code : 'IO_ERROR', message: errorMessage(err).slice(0, 1024) };
      }
    }
    return { header: { type: 'ranges', sizes, errors }, payload: joinPayload(parts) };
  }

  private handleHello(hello: Hello): void {
    if (hello.protocol !== 1) throw new FerryError('INVALID_MESSAGE', `peer speaks protocol ${hello.protocol}, this node speaks 1`);
    this.ranges.peerSendRate(hello.sendRate);
    const mine = new Map(this.host.sharedFolders(this.deviceId).map((f) => [f.id, f]));
    // A folder the peer lists again (resumed or added there) must hear where we stand, even if
    // we never stopped sending it.
    const listedBefore = this.peerListed;
    this.peerListed = new Set(hello.folders.map((f) => f.id));
    this.helloSeen = true;
    let newlyActive = false;
    for (const f of hello.folders) {
      const folder = mine.get(f.id);
      if (!folder || !this.host.folder(f.id)) {
        if (!this.unsharedLogged.has(f.id)) {
          this.unsharedLogged.add(f.id);
          // Kept for the user to accept (`ferry status`, `ferry folder accept`); a folder that
          // is configured but not running here (it failed to start) is not an offer.
          if (!folder && isFolderId(f.id)) {
            this.host.store.notePendingFolder(f.id, this.deviceId);
            this.host.logger.info({ peer: this.deviceId, folder: f.id }, 'peer offers a folder that is not shared with it here; accept it with `ferry folder accept`');
          } else {
            this.host.logger.info({ peer: this.deviceId, folder: f.id }, 'peer offers a folder that is not shared with it here; ignoring');
          }
        }
        continue;
      }
      const known = this.host.store.remoteIndex(f.id, this.deviceId);
      if (!known || known.indexId !== f.indexId) {
        this.host.store.resetRemote(f.id, this.deviceId, f.indexId);
        this.host.folder(f.id)?.recomputeNeed();
      }
      const from = f.haveIndexId === folder.indexId ? Math.min(f.haveSequence, this.host.store.maxSequence(f.id)) : 0;
      if (!this.sent.has(f.id) || !listedBefore.has(f.id)) newlyActive = true;
      this.host.folder(f.id)?.peerConnected();
      if (!this.sent.has(f.id) || (this.sent.get(f.id) ?? 0) > from) this.sent.set(f.id, from);
      void this.pump(f.id);
    }
    // A folder the peer no longer lists (paused or no longer shared there) gets no index from
    // here until it is listed again; then it hears where we stand (above) and is sent from there.
    for (const id of [...this.sent.keys()]) if (!this.peerListed.has(id)) this.sent.delete(id);
    // The peer may have ignored our earlier hello (it did not share the folder yet): answer so
    // it learns where we stand. Only on change, so two hellos never bounce forever.
    if (newlyActive) this.sendHello();
  }

  private handleIndex(folderId: string, payload: Buffer | undefined): void {
    const folder = this.sharedFolder(folderId);
    const { records, rejected } = decodeRecords(payload);
    for (const r of rejected) {
      this.host.logger.warn({ peer: this.deviceId, folder: folderId, path: r.path, err: r.reason }, 'rejected invalid record from peer');
    }
    if (records.length === 0) return;
    this.host.store.putRemote(folderId, this.deviceId, records);
    folder.remoteChanged(records);
  }

  private sharedFolder(id: string): FolderSync {
    const shared = this.host.sharedFolders(this.deviceId).some((f) => f.id === id);
    const folder = shared ? this.host.folder(id) : undefined;
    if (!folder) throw new FerryError('NOT_SHARED', `folder ${JSON.stringify(id)} is not shared with ${this.deviceId}`);
    return folder;
  }

  /** Sends every local record newer than what was sent; coalesces concurrent triggers. */
  private async pump(folderId: string): Promise<void> {
    if (this.pumping.has(folderId)) {
      this.dirty.add(folderId);
      return;
    }
    this.pumping.add(folderId);
    try {
      do {
        this.dirty.delete(folderId);
        for (;;) {
          const from = this.sent.get(folderId);
          if (from === undefined || this.conn.closed) return;
          const records = this.host.store.localSince(folderId, from, INDEX_BATCH);
          if (records.length === 0) break;
          const folder = this.host.folder(folderId);
          const announced = folder ? records.filter((r) => folder.announces(r)) : records;
          for (const batch of bySize(announced)) {
            if (batch.length === 0) continue;
            this.conn.send({ header: { type: 'index', folder: folderId }, payload: encodeRecords(batch) });
          }
          this.sent.set(folderId, records[records.length - 1]!.sequence);
          await new Promise((r) => setImmediate(r));
        }
      } while (this.dirty.has(folderId));
    } catch (err) {
      this.host.logger.warn({ peer: this.deviceId, folder: folderId, err: errorMessage(err) }, 'cannot send index');
    } finally {
      this.pumping.delete(folderId);
    }
  }
}

/** Splits records so no index message carries more than about 4 MiB of block lists. */
function bySize(records: FileRecord[]): FileRecord[][] {
  const out: FileRecord[][] = [[]];
  let blocks = 0;
  for (const r of records) {
    if (blocks + r.blocks.length > MAX_BLOCKS_PER_MESSAGE && out[out.length - 1]!.length > 0) {
      out.push([]);
      blocks = 0;
    }
    out[out.length - 1]!.push(r);
    blocks += r.blocks.length;
  }
  return out;
}
