/**
 * The composition root of a running node: opens the index and identity, listens for peers,
 * dials configured peers (with backoff), runs one FolderSync per folder, routes block requests
 * to peers, follows configuration changes made by the CLI while running, and publishes its
 * status for `ferry status`.
 */
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from '../core/clock.js';
import { RateLimits } from '../core/rate-limiter.js';
import { shortDeviceId } from '../core/device-id.js';
import { errorMessage, FerryError } from '../core/errors.js';
import { sameContent, type BlockRef, type FileRecord } from '../core/file-record.js';
import { FolderPaths } from '../engine/folder-paths.js';
import { FolderSync } from '../engine/folder-sync.js';
import { IgnoreRules } from '../engine/ignore-rules.js';
import { PeerSession } from '../engine/peer-session.js';
import type { ScanSummary } from '../engine/scanner.js';
import { Versioner } from '../engine/versioner.js';
import type { FolderConfig, PeerConfig } from '../index-store/config-types.js';
import { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import type { PeerConnection } from '../protocol/connection.js';
import type { Network, NetworkListener } from '../protocol/network.js';
import { isLanAddress, parseHostPort } from '../transport/address.js';
import { loadIdentity, type Identity } from '../transport/identity.js';
import { LanDiscovery } from '../transport/lan-discovery.js';
import { TlsNetwork } from '../transport/tls-network.js';
import { databasePath, identityDir } from './home.js';
import type { NodeLogger } from './logger.js';
import { STATUS_KEY, type NodeRuntimeStatus, type PeerRuntime } from './node-status.js';

export interface NodeOptions {
  readonly home: string;
  readonly logger: NodeLogger;
  /** Where to listen (the real TLS network). */
  readonly host?: string;
  readonly port?: number;
  /** Another network (simulations); then `deviceId` names this node instead of its certificate. */
  readonly network?: Network;
  readonly deviceId?: string;
  /** Watch folders for changes (default true); simulations trigger scans themselves. */
  readonly watch?: boolean;
  /** Time for the node's timers (dial back-off, retries, rescans); simulations run it faster. */
  readonly clock?: Clock;
  /** LAN discovery on this UDP port (the real TLS network only); off when absent. */
  readonly discoveryPort?: number;
  /**
   * Most bytes a second of file data sent to / received from all peers together; these win
   * over what `ferry limits` stored (unlimited when neither says).
   */
  readonly maxSendRate?: number;
  readonly maxReceiveRate?: number;
  /** Plain HTTPS requests on the node's port (the REST API), for the real TLS network. */
  readonly handleRequest?: (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => void;
}

const DIAL_TICK_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const CONFIG_POLL_MS = 500;
const STATUS_EVERY_MS = 1000;

interface PeerState {
  session?: PeerSession;
  /** Whether we dialed the current connection. */
  outbound?: boolean;
  dialing: boolean;
  nextDialAt: number;
  backoffMs: number;
  lastSeen?: string;
  /** Bytes of connections that already closed. */
  closedIn: number;
  closedOut: number;
}

export class FerryNode {
  private readonly folders = new Map<string, FolderSync>();
  private readonly peers = new Map<string, PeerState>();
  private folderConfigs: FolderConfig[] = [];
  private peerConfigs: PeerConfig[] = [];
  private listener?: NetworkListener;
  private discovery?: LanDiscovery;
  private timers: NodeJS.Timeout[] = [];
  private dataVersion = 0;
  private readonly startedAt = new Date().toISOString();
  /** Why the last status could not be written to the index, while it cannot. */
  private statusError?: string;
  private stopping = false;
  private listenAddress = '';
  private rates?: RateLimits;
  /** Whether the rate limits hold for peers on the LAN too (`ferry limits --lan on`). */
  private limitLan = false;

  private constructor(
    private readonly options: NodeOptions,
    private readonly store: SqliteIndexStore,
    private readonly network: Network,
    readonly deviceId: string,
    readonly name: string,
    /** The TLS identity (the real network only): it signs LAN announcements. */
    private readonly identity?: Identity,
  ) {}

  static async start(options: NodeOptions): Promise<FerryNode> {
    let network = options.network;
    let deviceId = options.deviceId;
    let identity: Identity | undefined;
    if (!network || !deviceId) {
      identity = await loadIdentity(identityDir(options.home));
      network = new TlsNetwork(identity, { host: options.host ?? '0.0.0.0', port: options.port ?? 22100 }, options.logger, options.handleRequest);
      deviceId = identity.deviceId;
    }
    const store = SqliteIndexStore.open(databasePath(options.home));
    const node = new FerryNode(options, store, network, deviceId, store.getMeta('name') ?? 'ferry', identity);
    try {
      await node.boot();
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  /** The address the node listens on (fixed once started). */
  get address(): string {
    return this.listenAddress;
  }

  /** One folder's sync loop (for tests and simulations). */
  folderSync(id: string): FolderSync | undefined {
    return this.folders.get(id);
  }

  /** `ferry folder override` (send-only) or `revert` (receive-only) on a running folder. */
  settle(action: 'override' | 'revert', id: string): Promise<string[]> {
    const folder = this.folders.get(id);
    if (!folder) throw new FerryError('UNKNOWN_FOLDER', `no folder ${id} is running on this node`);
    return action === 'override' ? folder.override() : folder.revert();
  }

  /** Scans the given folders (every folder when none is given) now, one after the other. */
  async rescan(ids: readonly string[]): Promise<({ id: string } & ScanSummary)[]> {
    const unknown = ids.filter((id) => !this.folders.has(id));
    if (unknown.length) throw new FerryError('UNKNOWN_FOLDER', `no folder ${unknown.join(', ')} is running on this node`);
    const out: ({ id: string } & ScanSummary)[] = [];
    for (const id of ids.length ? new Set(ids) : [...this.folders.keys()]) {
      const folder = this.folders.get(id);
      if (folder) out.push({ id, ...(await folder.rescan()) });
    }
    return out;
  }

  /** Device IDs of the peers connected right now. */
  connectedPeers(): string[] {
    return [...this.peers].filter(([, s]) => s.session && !s.session.conn.closed).map(([id]) => id);
  }

  private get logger(): NodeLogger {
    return this.options.logger;
  }

  private get clock(): Clock {
    return this.options.clock ?? systemClock;
  }

  private async boot(): Promise<void> {
    this.listener = await this.network.listen({
      authorize: (deviceId) => this.peerConfigs.some((p) => p.deviceId === deviceId),
      onRefused: (deviceId, address) => {
        this.logger.warn({ device: deviceId, address }, 'refused connection from unknown device (add it with `ferry peer add` to accept)');
        this.store.notePendingDevice(deviceId, address);
      },
      onConnection: (conn) => this.addConnection(conn, false),
      paused: (deviceId) => this.peerConfigs.some((p) => p.deviceId === deviceId && p.paused),
    });
    this.listenAddress = this.listener.address;
    this.dataVersion = this.store.dataVersion();
    await this.reloadConfig();
    // Announced only now: peers that dial at once must find their configuration loaded.
    await this.startDiscovery();
    this.timers.push(this.clock.setInterval(() => this.dialDue(), DIAL_TICK_MS));
    this.timers.push(this.clock.setInterval(() => void this.pollConfig(), CONFIG_POLL_MS));
    this.timers.push(this.clock.setInterval(() => this.publishStatus(), STATUS_EVERY_MS));
    this.publishStatus();
    this.dialDue();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    for (const p of this.peers.values()) p.session?.conn.close(new FerryError('CLOSED', 'node stopping'));
    await this.listener?.close();
    await this.discovery?.stop();
    await Promise.all([...this.folders.values()].map((f) => f.stop()));
    try {
      this.publishStatus(false);
    } finally {
      this.store.close();
    }
  }

  // ---- configuration ------------------------------------------------------------------

  private async pollConfig(): Promise<void> {
    const v = this.store.dataVersion();
    if (v === this.dataVersion || this.stopping) return;
    this.dataVersion = v;
    await this.reloadConfig();
  }

  private async reloadConfig(): Promise<void> {
    this.applyRateLimits(); // the hellos sent below tell peers a new send limit
    const before = new Map(this.folderConfigs.map((f) => [f.id, f]));
    this.folderConfigs = this.store.listFolders();
    this.peerConfigs = this.store.listPeers();
    for (const f of this.folderConfigs) {
      const old = before.get(f.id);
      if (f.paused) {
        // Stopped: the hellos sent below no longer offer it, so peers stop sending its index.
        if (this.folders.has(f.id)) {
          await this.stopFolder(f.id);
          this.logger.info({ folder: f.id }, 'folder paused');
        }
        continue;
      }
      // A changed path or setting restarts the folder's sync with it (a full scan, cheap when nothing changed).
      if (old && (old.path !== f.path || old.versionsKeepDays !== f.versionsKeepDays || old.rescanSeconds !== f.rescanSeconds || old.mode !== f.mode)) await this.stopFolder(f.id);
      if (!this.folders.has(f.id)) await this.startFolder(f);
      else if (old && old.devices.join() !== f.devices.join()) this.folders.get(f.id)!.recomputeNeed();
    }
    for (const id of before.keys()) if (!this.folderConfigs.some((f) => f.id === id)) await this.stopFolder(id);
    const known = new Set(this.peerConfigs.map((p) => p.deviceId));
    for (const [id, state] of this.peers) {
      if (!known.has(id)) {
        state.session?.conn.close(new FerryError('UNKNOWN_DEVICE', 'peer removed from configuration'));
        this.peers.delete(id);
      }
    }
    for (const p of this.peerConfigs) {
      const state = this.peerState(p.deviceId);
      if (p.paused) {
        if (state.session) this.logger.info({ peer: p.deviceId }, 'peer paused; disconnecting');
        state.session?.conn.close(new FerryError('CLOSED', 'peer paused'));
        continue;
      }
      state.session?.sendHello();
      if (!state.session) state.nextDialAt = 0;
    }
    this.dialDue();
  }

  /**
   * A folder that runs no longer receive-only (changed while it ran, was paused, or the node was
   * stopped) sends what was changed here meanwhile: those records were skipped when their
   * sequence numbers went out, so they get new ones. Records a revert left behind (no version:
   * the peers' version is due) are not news to anyone. The mode a folder last ran with is kept
   * in the index for this. Returns whether there was anything.
   */
  private sendHeldBack(cfg: FolderConfig): boolean {
    const key = `folderMode:${cfg.id}`;
    const ranAs = this.store.getMeta(key);
    if (ranAs !== cfg.mode) this.store.setMeta(key, cfg.mode);
    if (ranAs !== 'receive-only' || cfg.mode === 'receive-only') return false;
    const entries = this.store
      .localPathsModifiedBy(cfg.id, shortDeviceId(this.deviceId))
      .map((p) => this.store.getLocal(cfg.id, p)!)
      .filter((e) => Object.keys(e.record.version).length > 0);
    if (entries.length > 0) this.store.commitLocal(cfg.id, entries);
    this.logger.info({ folder: cfg.id, records: entries.length }, 'folder no longer receive-only: sending the changes made here');
    return entries.length > 0;
  }

  private async startFolder(cfg: FolderConfig): Promise<void> {
    try {
      mkdirSync(cfg.path, { recursive: true });
      const heldBack = this.sendHeldBack(cfg);
      const ctx = {
        folderId: cfg.id,
        root: cfg.path,
        store: this.store,
        shortId: shortDeviceId(this.deviceId),
        paths: new FolderPaths(cfg.path),
        versioner: new Versioner(cfg.path, cfg.versionsKeepDays),
        logger: this.logger.child({ folder: cfg.id }),
        ignore: IgnoreRules.load(cfg.path),
      };
      const folder = new FolderSync(ctx, {
        devices: () => this.folderConfigs.find((f) => f.id === cfg.id)?.devices ?? [],
        fetchBlock: (record) => this.blockSource(cfg.id, record),
        onLocalChange: () => this.announce(cfg.id),
        rescanSeconds: cfg.rescanSeconds,
        mode: cfg.mode,
        watch: this.options.watch ?? true,
        clock: this.clock,
      });
      this.folders.set(cfg.id, folder);
      await folder.start();
      if (heldBack) this.announce(cfg.id);
      this.logger.info({ folder: cfg.id, path: cfg.path }, 'folder started');
    } catch (err) {
      this.logger.error({ folder: cfg.id, err: errorMessage(err) }, 'cannot start folder');
    }
  }

  private async stopFolder(id: string): Promise<void> {
    const f = this.folders.get(id);
    this.folders.delete(id);
    await f?.stop();
  }

  // ---- peers ----------------------------------------------------------------------------

  private peerState(deviceId: string): PeerState {
    let s = this.peers.get(deviceId);
    if (!s) {
      s = { dialing: false, nextDialAt: 0, backoffMs: 1000, closedIn: 0, closedOut: 0 };
      this.peers.set(deviceId, s);
    }
    return s;
  }

  /**
   * Announces this node on its networks and learns where others are. A node that cannot bind
   * the discovery port still runs: its peers need configured addresses then.
   */
  private async startDiscovery(): Promise<void> {
    if (this.options.discoveryPort === undefined || !this.identity) return;
    try {
      this.discovery = await LanDiscovery.start({
        identity: this.identity,
        listenHost: this.options.host ?? '0.0.0.0',
        listenPort: parseHostPort(this.listenAddress).port,
        port: this.options.discoveryPort,
        logger: this.logger.child({ component: 'discovery' }),
        clock: this.clock,
        onFound: (device) => {
          const s = this.peers.get(device.deviceId);
          if (!s) return; // not a peer: only listed as nearby
          this.logger.info({ peer: device.deviceId, address: device.address }, 'found a peer on the LAN');
          if (s.session) return;
          // A configured peer just appeared (or moved): dial it now, not after the back-off.
          s.nextDialAt = 0;
          s.backoffMs = 1000;
          this.dialDue();
        },
      });
    } catch (err) {
      this.logger.warn({ port: this.options.discoveryPort, err: errorMessage(err) }, 'LAN discovery is off: cannot use its UDP port');
    }
  }

  /** Where to dial a peer: its configured addresses, then where it last announced itself. */
  private addressesOf(p: PeerConfig): string[] {
    const found = this.discovery?.addressOf(p.deviceId);
    return found && !p.addresses.includes(found) ? [...p.addresses, found] : [...p.addresses];
  }

  private dialDue(): void {
    if (this.stopping) return;
    const now = this.clock.now();
    for (const p of this.peerConfigs) {
      const s = this.peerState(p.deviceId);
      if (p.paused || s.session || s.dialing || now < s.nextDialAt) continue;
      const addresses = this.addressesOf(p);
      if (addresses.length === 0) continue;
      s.dialing = true;
      void this.dial(p, addresses, s).finally(() => {
        s.dialing = false;
      });
    }
  }

  private async dial(p: PeerConfig, addresses: readonly string[], s: PeerState): Promise<void> {
    for (const address of addresses) {
      try {
        const conn = await this.network.dial(address, p.deviceId);
        s.backoffMs = 1000;
        this.addConnection(conn, true);
        return;
      } catch (err) {
        this.logger.debug({ peer: p.deviceId, address, err: errorMessage(err) }, 'cannot connect to peer');
        if ((err as FerryError).code === 'UNKNOWN_DEVICE') {
          this.logger.warn({ peer: p.deviceId, address, err: errorMessage(err) }, 'peer identity mismatch; not syncing with it');
        }
      }
    }
    s.nextDialAt = this.clock.now() + s.backoffMs;
    s.backoffMs = Math.min(s.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private addConnection(conn: PeerConnection, outbound: boolean): void {
    if (this.stopping) return conn.close(new FerryError('CLOSED', 'node stopping'));
    const s = this.peerState(conn.deviceId);
    if (s.session && !s.session.conn.closed) {
      // Both sides dialed at once: keep the connection the smaller device ID initiated.
      const initiator = (o: boolean) => (o ? this.deviceId : conn.deviceId);
      const keepNew = initiator(outbound) < initiator(s.outbound!);
      if (!keepNew) return conn.close(new FerryError('CLOSED', 'duplicate connection'));
      s.session.conn.close(new FerryError('CLOSED', 'duplicate connection'));
    }
    const session = new PeerSession(conn, {
      store: this.store,
      name: this.name,
      logger: this.logger,
      sharedFolders: (deviceId) => this.folderConfigs.filter((f) => f.devices.includes(deviceId) && this.folders.has(f.id)),
      folder: (id) => this.folders.get(id),
      rates: this.ratesFor(conn.remoteAddress),
    });
    s.session = session;
    s.outbound = outbound;
    s.lastSeen = new Date().toISOString();
    conn.onClose((reason) => {
      s.closedIn += conn.stats.bytesIn;
      s.closedOut += conn.stats.bytesOut;
      s.lastSeen = new Date().toISOString();
      if (s.session === session) {
        s.session = undefined;
        s.nextDialAt = this.clock.now() + 500;
        this.logger.info({ peer: conn.deviceId, reason: reason?.message }, 'peer disconnected');
      }
    });
    session.start();
    this.logger.info({ peer: conn.deviceId, address: conn.remoteAddress, outbound }, 'peer connected');
  }

  /** One pair for the node: the limits hold for all peers together, and change in place. */
  private get limits(): RateLimits {
    return (this.rates ??= new RateLimits(this.clock));
  }

  /** The limits a connection from `address` goes by: none for a peer on the LAN, unless told to limit those too. */
  private ratesFor(address: string): RateLimits | undefined {
    return this.limitLan || !isLanAddress(address) ? this.limits : undefined;
  }

  /**
   * Takes the limits of the start options, else of the index (`ferry limits`); logs a change.
   * When the LAN rule changes, LAN peers are reconnected, so that their sessions go by it.
   */
  private applyRateLimits(): void {
    const stored = this.store.getRateLimits();
    const send = this.options.maxSendRate ?? stored.send;
    const receive = this.options.maxReceiveRate ?? stored.receive;
    const lanChanged = stored.lan !== this.limitLan;
    this.limitLan = stored.lan;
    if (this.limits.set(send, receive) || lanChanged) this.logger.info({ maxSendRate: send ?? null, maxReceiveRate: receive ?? null, limitLan: this.limitLan }, 'rate limits');
    if (!lanChanged) return;
    for (const s of this.peers.values()) {
      if (s.session && isLanAddress(s.session.conn.remoteAddress)) s.session.conn.close(new FerryError('CLOSED', 'rate limits changed for LAN peers'));
    }
  }

  private announce(folderId: string): void {
    for (const s of this.peers.values()) s.session?.localChanged(folderId);
  }

  /**
   * Block source for one file: connected peers sharing the folder, those that announced this
   * very content first. Blocks are spread over the holders; a retry moves to the next peer.
   */
  private blockSource(folderId: string, record: FileRecord) {
    const devices = this.folderConfigs.find((f) => f.id === folderId)?.devices ?? [];
    const connected = devices
      .map((d) => this.peers.get(d)?.session)
      .filter((s): s is PeerSession => s !== undefined && !s.conn.closed && !s.lacks(folderId));
    // Which peers announced this very content decides whom to ask first; with one peer
    // connected there is no choice to make (and no index lookup per file to pay for).
    const holders = new Set(
      connected.length < 2
        ? connected.map((s) => s.deviceId)
        : this.store
            .remoteFor(folderId, record.path)
            .filter((r) => sameContent(r.record, record))
            .map((r) => r.device),
    );
    const ordered = [...connected.filter((s) => holders.has(s.deviceId)), ...connected.filter((s) => !holders.has(s.deviceId))];
    const spread = Math.max(1, connected.filter((s) => holders.has(s.deviceId)).length);
    return {
      fetch: async (blocks: readonly BlockRef[], offset: number, attempt: number): Promise<{ data: Buffer; from: string }> => {
        const wire = blocks.map((b) => ({ size: b.size, hash: b.hash.toString('hex') }));
        const first = (blocks[0]!.hash.readUInt32BE(0) % spread) + attempt;
        let lastError: unknown;
        for (let i = 0; i < ordered.length; i++) {
          const session = ordered[(first + i) % ordered.length]!;
          if (session.conn.closed) continue;
          try {
            return { data: await session.ranges.fetch(folderId, record.path, offset, wire), from: session.deviceId };
          } catch (err) {
            lastError = err;
          }
        }
        throw new FerryError('PEER_UNAVAILABLE', `no connected peer could supply the blocks at ${offset} of ${record.path}`, { cause: lastError });
      },
    };
  }

  // ---- status ---------------------------------------------------------------------------

  /** What `ferry status` shows of the running node (also published to the index every second). */
  runtimeStatus(running = true): NodeRuntimeStatus {
    const peers: Record<string, PeerRuntime> = {};
    for (const p of this.peerConfigs) {
      const s = this.peerState(p.deviceId);
      const conn = s.session?.conn;
      if (conn && !conn.closed) s.lastSeen = new Date().toISOString();
      peers[p.deviceId] = {
        deviceId: p.deviceId,
        connected: running && !!conn && !conn.closed,
        address: conn?.remoteAddress,
        discoveredAddress: this.discovery?.addressOf(p.deviceId),
        lastSeen: s.lastSeen,
        bytesIn: s.closedIn + (conn?.stats.bytesIn ?? 0),
        bytesOut: s.closedOut + (conn?.stats.bytesOut ?? 0),
      };
    }
    const folders: NodeRuntimeStatus['folders'] = {};
    for (const [id, f] of this.folders) folders[id] = f.status();
    return {
      pid: process.pid,
      running,
      listen: this.listenAddress,
      startedAt: this.startedAt,
      heartbeat: Date.now(),
      folders,
      peers,
      ...(this.limits.send ? { maxSendRate: this.limits.send.bytesPerSecond } : {}),
      ...(this.limits.receive ? { maxReceiveRate: this.limits.receive.bytesPerSecond } : {}),
      limitLan: this.limitLan,
      nearby: (this.discovery?.list() ?? [])
        .filter((d) => !this.peerConfigs.some((p) => p.deviceId === d.deviceId))
        .map((d) => ({ deviceId: d.deviceId, address: d.address, lastSeen: new Date(d.lastSeenMs).toISOString() })),
    };
  }

  private publishStatus(running = true): void {
    try {
      this.store.setStatus(STATUS_KEY, this.runtimeStatus(running));
      if (this.statusError) this.logger.info('status published again');
      this.statusError = undefined;
    } catch (err) {
      // Said once: it fails every second while the disk is full. `ferry status` asks the node
      // itself (control socket) meanwhile.
      if (!this.statusError) this.logger.warn({ err: errorMessage(err) }, 'cannot publish status to the index');
      this.statusError = errorMessage(err);
    }
  }
}
