/**
 * LAN discovery: a node announces its device ID and listening port by UDP broadcast on each of
 * its IPv4 networks, every 30 s and when it sees a device it did not know, and remembers where
 * other devices announced themselves, so a peer can be added by its device ID alone and is
 * found again when its address changes. An announcement is never trusted: it only says where
 * to dial, and the TLS handshake still pins the device ID, so a forged one costs a failed dial.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { systemClock, type Clock } from '../core/clock.js';
import { parseDeviceId } from '../core/device-id.js';
import { errorMessage, FerryError } from '../core/errors.js';
import { formatHostPort } from './address.js';
import type { Logger } from './logger.js';

/** The UDP port announcements go to (the same number as the default TCP listening port). */
export const DEFAULT_DISCOVERY_PORT = 22100;
const ANNOUNCE_EVERY_MS = 30_000;
/** A device not heard for three announcements (and a margin) is forgotten. */
const FORGET_AFTER_MS = 3 * ANNOUNCE_EVERY_MS + 5000;
/** Answering newcomers at once is rate-limited: a flood of forged devices costs one packet a second. */
const MIN_REPLY_GAP_MS = 1000;
const MAX_PACKET_BYTES = 512;
/** Devices remembered at most (the oldest is dropped), whatever a network floods us with. */
const MAX_DEVICES = 256;
const MAGIC = 'ferry-discovery/1';

export interface Announcement {
  readonly deviceId: string;
  /** The TCP port the device listens on; its address is where the packet came from. */
  readonly port: number;
  /** Random per start of the node: a new value means it restarted (and may not know us). */
  readonly instance: string;
}

export interface DiscoveredDevice {
  readonly deviceId: string;
  readonly address: string;
  readonly lastSeenMs: number;
}

export interface LanDiscoveryOptions {
  readonly deviceId: string;
  /** The host the node listens on: it decides which networks hear the announcements. */
  readonly listenHost: string;
  readonly listenPort: number;
  /** UDP port to announce to and listen on (default DEFAULT_DISCOVERY_PORT). */
  readonly port?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** A device announced itself for the first time, from a new address or after a restart. */
  readonly onFound?: (device: DiscoveredDevice) => void;
  /** The interfaces to announce on (tests); default os.networkInterfaces(). */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** The announcement as sent: JSON, small, one per packet. */
export function encodeAnnouncement(a: Announcement): Buffer {
  return Buffer.from(JSON.stringify({ magic: MAGIC, deviceId: a.deviceId, port: a.port, instance: a.instance }));
}

/** Parses a received packet; INVALID_MESSAGE says what is wrong with it. */
export function parseAnnouncement(packet: Buffer): Announcement {
  if (packet.length > MAX_PACKET_BYTES) throw new FerryError('INVALID_MESSAGE', `announcement of ${packet.length} bytes (at most ${MAX_PACKET_BYTES})`);
  let v: unknown;
  try {
    v = JSON.parse(packet.toString('utf8'));
  } catch {
    throw new FerryError('INVALID_MESSAGE', 'announcement is not JSON');
  }
  const o = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || o.magic !== MAGIC) throw new FerryError('INVALID_MESSAGE', 'not a Ferry announcement');
  if (typeof o.deviceId !== 'string') throw new FerryError('INVALID_MESSAGE', 'announcement without a device ID');
  let deviceId: string;
  try {
    deviceId = parseDeviceId(o.deviceId);
  } catch (err) {
    throw new FerryError('INVALID_MESSAGE', `announcement with ${errorMessage(err)}`);
  }
  if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535) {
    throw new FerryError('INVALID_MESSAGE', 'announcement with an invalid port');
  }
  if (typeof o.instance !== 'string' || !/^[0-9a-f]{16}$/.test(o.instance)) throw new FerryError('INVALID_MESSAGE', 'announcement with an invalid instance');
  return { deviceId, port: o.port as number, instance: o.instance };
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}

/**
 * The broadcast addresses a node listening on `listenHost` announces to: the loopback
 * network's for a node only reachable on this machine, else those of its IPv4 networks
 * (all of them for a wildcard address, the one holding the address otherwise).
 */
export function broadcastTargets(listenHost: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string[] {
  if (isLoopbackHost(listenHost)) return ['127.255.255.255'];
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
  const out = new Set<string>();
  for (const infos of Object.values(interfaces)) {
    for (const i of infos ?? []) {
      if (i.family !== 'IPv4' || i.internal || (!wildcard && i.address !== listenHost)) continue;
      const mask = ipv4ToInt(i.netmask);
      out.add(intToIpv4((ipv4ToInt(i.address) | (~mask >>> 0)) >>> 0));
    }
  }
  return [...out];
}

export class LanDiscovery {
  private readonly devices = new Map<string, DiscoveredDevice & { instance: string }>();
  private readonly instance = randomBytes(8).toString('hex');
  private readonly udpPort: number;
  private timer?: NodeJS.Timeout;
  private replyTimer?: NodeJS.Timeout;
  private stopped = false;
  private lastReplyMs = -Infinity;
  private replyPending = false;

  private constructor(
    private readonly options: LanDiscoveryOptions,
    private readonly socket: Socket,
  ) {
    this.udpPort = options.port ?? DEFAULT_DISCOVERY_PORT;
  }

  /** Binds the discovery port (shared with other nodes on this machine) and announces. */
  static async start(options: LanDiscoveryOptions): Promise<LanDiscovery> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const d = new LanDiscovery(options, socket);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(d.udpPort, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    socket.on('message', (packet, from) => d.received(packet, from));
    socket.on('error', (err) => options.logger.warn({ err: errorMessage(err) }, 'LAN discovery socket error'));
    socket.setBroadcast(true);
    d.timer = (options.clock ?? systemClock).setInterval(() => d.announce(), ANNOUNCE_EVERY_MS);
    d.announce();
    return d;
  }

  /** The address a device last announced, unless that was too long ago. */
  addressOf(deviceId: string): string | undefined {
    this.forgetStale();
    return this.devices.get(deviceId)?.address;
  }

  /** Devices heard recently (other than this one). */
  list(): DiscoveredDevice[] {
    this.forgetStale();
    return [...this.devices.values()].map(({ deviceId, address, lastSeenMs }) => ({ deviceId, address, lastSeenMs }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.replyTimer);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private get now(): number {
    return (this.options.clock ?? systemClock).now();
  }

  private forgetStale(): void {
    const cutoff = this.now - FORGET_AFTER_MS;
    for (const [id, d] of this.devices) if (d.lastSeenMs < cutoff) this.devices.delete(id);
  }

  private announce(): void {
    if (this.stopped) return;
    const packet = encodeAnnouncement({ deviceId: this.options.deviceId, port: this.options.listenPort, instance: this.instance });
    const targets = broadcastTargets(this.options.listenHost, (this.options.interfaces ?? networkInterfaces)());
    for (const target of targets) {
      this.socket.send(packet, this.udpPort, target, (err) => {
        if (err) this.options.logger.debug({ target, err: errorMessage(err) }, 'cannot send a LAN announcement');
      });
    }
  }

  private received(packet: Buffer, from: RemoteInfo): void {
    let a: Announcement;
    try {
      a = parseAnnouncement(packet);
    } catch (err) {
      this.options.logger.debug({ from: from.address, err: errorMessage(err) }, 'ignored a LAN discovery packet');
      return;
    }
    if (a.deviceId === this.options.deviceId) return; // our own broadcast, looped back
    // A node reachable only on this machine does not dial what other machines announce.
    if (isLoopbackHost(this.options.listenHost) && !isLoopbackHost(from.address)) return;
    const address = formatHostPort(from.address, a.port);
    const before = this.devices.get(a.deviceId);
    this.devices.delete(a.deviceId); // re-inserted last: the map's order is oldest first
    const device = { deviceId: a.deviceId, address, lastSeenMs: this.now, instance: a.instance };
    this.devices.set(a.deviceId, device);
    if (this.devices.size > MAX_DEVICES) this.devices.delete(this.devices.keys().next().value!);
    if (before?.address === address && before.instance === a.instance) return;
    this.options.logger.debug({ device: a.deviceId, address }, 'found a device on the LAN');
    // A newcomer may not know us yet: answer now rather than at the next round.
    this.replySoon();
    this.options.onFound?.({ deviceId: a.deviceId, address, lastSeenMs: device.lastSeenMs });
  }

  private replySoon(): void {
    if (this.replyPending) return;
    const wait = Math.max(0, this.lastReplyMs + MIN_REPLY_GAP_MS - this.now);
    this.replyPending = true;
    this.replyTimer = (this.options.clock ?? systemClock).setTimeout(() => {
      this.replyPending = false;
      this.lastReplyMs = this.now;
      this.announce();
    }, wait);
  }
}
