/**
 * LAN discovery: a node announces its device ID and listening port by UDP broadcast on each of
 * its IPv4 networks, every 30 s and when it sees a device it did not know, and remembers where
 * other devices announced themselves, so a peer can be added by its device ID alone and is
 * found again when its address changes. An announcement is signed with the device's key and
 * carries its certificate (whose SHA-256 is the device ID) and the addresses it is sent from,
 * so nobody else can announce a device, nor replay its announcement from another address. The
 * TLS handshake still pins the device ID on every connection.
 */
import { createPrivateKey, randomBytes, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { systemClock, type Clock } from '../core/clock.js';
import { deviceIdFromCertificate, parseDeviceId } from '../core/device-id.js';
import { errorMessage, FerryError } from '../core/errors.js';
import { formatHostPort } from './address.js';
import type { Identity } from './identity.js';
import type { Logger } from './logger.js';

/** The UDP port announcements go to (the same number as the default TCP listening port). */
export const DEFAULT_DISCOVERY_PORT = 22100;
const ANNOUNCE_EVERY_MS = 30_000;
/** A device not heard for three announcements (and a margin) is forgotten. */
const FORGET_AFTER_MS = 3 * ANNOUNCE_EVERY_MS + 5000;
/** Answering newcomers at once is rate-limited: a flood of forged devices costs one packet a second. */
const MIN_REPLY_GAP_MS = 1000;
const MAX_PACKET_BYTES = 1400;
/** Signatures checked per second at most: each costs ~0.2 ms, and a flood must not cost more. */
const MAX_VERIFY_PER_SECOND = 50;
const MAX_ADDRESSES = 16;
/** Devices remembered at most (the oldest is dropped), whatever a network floods us with. */
const MAX_DEVICES = 256;
const MAGIC = 'ferry-discovery/1';

export interface Announcement {
  readonly deviceId: string;
  /** The TCP port the device listens on; its address is where the packet came from. */
  readonly port: number;
  /** Random per start of the node: a new value means it restarted (and may not know us). */
  readonly instance: string;
  /** The IPv4 addresses the device sends its announcements from. */
  readonly addresses: readonly string[];
}

export interface DiscoveredDevice {
  readonly deviceId: string;
  readonly address: string;
  readonly lastSeenMs: number;
}

export interface LanDiscoveryOptions {
  /** The device's identity: its ID, and the key and certificate that sign its announcements. */
  readonly identity: Pick<Identity, 'deviceId' | 'certDer' | 'keyPem'>;
  /** The host the node listens on: it decides which networks hear the announcements. */
  readonly listenHost: string;
  readonly listenPort: number;
  /** UDP port to announce to and listen on (default DEFAULT_DISCOVERY_PORT). */
  readonly port?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** A device announced itself for the first time, from a new address or after a restart. */
  readonly onFound?: (device: DiscoveredDevice) => void;
  /** Devices remembered at most (default 256; tests use fewer). */
  readonly maxDevices?: number;
  /** The interfaces to announce on (tests); default os.networkInterfaces(). */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/**
 * The announcement as sent, one per packet: `{"signed": TEXT, "sig": BASE64}`, where TEXT is the
 * JSON of the announcement with the certificate, and the signature (ECDSA P-256, SHA-256) is
 * over TEXT's bytes exactly as they travel, so no canonical form is needed.
 */
export function encodeAnnouncement(a: Announcement, signer: { certDer: Buffer; key: KeyObject }): Buffer {
  const signed = JSON.stringify({ magic: MAGIC, deviceId: a.deviceId, port: a.port, instance: a.instance, addresses: a.addresses, cert: signer.certDer.toString('base64') });
  return Buffer.from(JSON.stringify({ signed, sig: sign('sha256', Buffer.from(signed), signer.key).toString('base64') }));
}

const invalid = (why: string) => new FerryError('INVALID_MESSAGE', why);

/** Parses and verifies a received packet; INVALID_MESSAGE says what is wrong with it. */
export function parseAnnouncement(packet: Buffer): Announcement {
  if (packet.length > MAX_PACKET_BYTES) throw invalid(`announcement of ${packet.length} bytes (at most ${MAX_PACKET_BYTES})`);
  const outer = parseJson(packet.toString('utf8'));
  if (typeof outer?.signed !== 'string' || typeof outer.sig !== 'string') throw invalid('not a Ferry announcement');
  const o = parseJson(outer.signed);
  if (o?.magic !== MAGIC) throw invalid('not a Ferry announcement');
  if (typeof o.deviceId !== 'string') throw invalid('announcement without a device ID');
  let deviceId: string;
  try {
    deviceId = parseDeviceId(o.deviceId);
  } catch (err) {
    throw invalid(`announcement with ${errorMessage(err)}`);
  }
  if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535) throw invalid('announcement with an invalid port');
  if (typeof o.instance !== 'string' || !/^[0-9a-f]{16}$/.test(o.instance)) throw invalid('announcement with an invalid instance');
  const addresses = o.addresses;
  if (!Array.isArray(addresses) || addresses.length > MAX_ADDRESSES || !addresses.every((x) => typeof x === 'string' && isIPv4(x))) {
    throw invalid('announcement with invalid addresses');
  }
  if (typeof o.cert !== 'string') throw invalid('announcement without a certificate');
  const certDer = Buffer.from(o.cert, 'base64');
  if (deviceIdFromCertificate(certDer) !== deviceId) throw invalid(`announcement of ${deviceId} with another device's certificate`);
  let valid = false;
  try {
    valid = verify('sha256', Buffer.from(outer.signed), new X509Certificate(certDer).publicKey, Buffer.from(outer.sig, 'base64'));
  } catch {
    // an unreadable certificate or signature: not valid
  }
  if (!valid) throw invalid(`announcement of ${deviceId} with a bad signature`);
  return { deviceId, port: o.port as number, instance: o.instance, addresses: addresses as string[] };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    throw invalid('announcement is not JSON');
  }
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
 * Where a node listening on `listenHost` announces itself: for each network, the node's address
 * there (announcements come from it) and the network's broadcast address. The loopback network
 * for a node only reachable on this machine, else its IPv4 networks (all of them for a wildcard
 * address, the one holding the address otherwise).
 */
export function broadcastTargets(listenHost: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): { address: string; broadcast: string }[] {
  if (isLoopbackHost(listenHost)) return [{ address: '127.0.0.1', broadcast: '127.255.255.255' }];
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
  const out = new Map<string, { address: string; broadcast: string }>();
  for (const infos of Object.values(interfaces)) {
    for (const i of infos ?? []) {
      if (i.family !== 'IPv4' || i.internal || (!wildcard && i.address !== listenHost)) continue;
      const mask = ipv4ToInt(i.netmask);
      out.set(i.address, { address: i.address, broadcast: intToIpv4((ipv4ToInt(i.address) | (~mask >>> 0)) >>> 0) });
    }
  }
  return [...out.values()].slice(0, MAX_ADDRESSES);
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
  private readonly signer: { certDer: Buffer; key: KeyObject };
  private lastSent?: Buffer;
  /** Signature checks left in the current second (see MAX_VERIFY_PER_SECOND). */
  private verifyBudget = { second: 0, left: MAX_VERIFY_PER_SECOND };

  private constructor(
    private readonly options: LanDiscoveryOptions,
    private readonly socket: Socket,
  ) {
    this.udpPort = options.port ?? DEFAULT_DISCOVERY_PORT;
    this.signer = { certDer: options.identity.certDer, key: createPrivateKey(options.identity.keyPem) };
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
    const targets = broadcastTargets(this.options.listenHost, (this.options.interfaces ?? networkInterfaces)());
    if (targets.length === 0) return;
    const addresses = targets.map((t) => t.address);
    const packet = encodeAnnouncement({ deviceId: this.options.identity.deviceId, port: this.options.listenPort, instance: this.instance, addresses }, this.signer);
    this.lastSent = packet;
    for (const { broadcast: target } of targets) {
      this.socket.send(packet, this.udpPort, target, (err) => {
        if (err) this.options.logger.debug({ target, err: errorMessage(err) }, 'cannot send a LAN announcement');
      });
    }
  }

  private received(packet: Buffer, from: RemoteInfo): void {
    // A node reachable only on this machine does not dial what other machines announce.
    if (isLoopbackHost(this.options.listenHost) && !isLoopbackHost(from.address)) return;
    if (this.lastSent?.equals(packet)) return; // our own broadcast, looped back
    if (!this.mayVerify()) return;
    let a: Announcement;
    try {
      a = parseAnnouncement(packet);
      // A replay from elsewhere would make us dial the wrong host: only the signed addresses count.
      if (!a.addresses.includes(from.address)) throw invalid(`announcement of ${a.deviceId} sent from ${from.address}, not from its own addresses`);
    } catch (err) {
      this.options.logger.debug({ from: from.address, err: errorMessage(err) }, 'ignored a LAN discovery packet');
      return;
    }
    if (a.deviceId === this.options.identity.deviceId) return; // an older one of ours
    const address = formatHostPort(from.address, a.port);
    const before = this.devices.get(a.deviceId);
    this.devices.delete(a.deviceId); // re-inserted last: the map's order is oldest first
    const device = { deviceId: a.deviceId, address, lastSeenMs: this.now, instance: a.instance };
    this.devices.set(a.deviceId, device);
    if (this.devices.size > (this.options.maxDevices ?? MAX_DEVICES)) this.devices.delete(this.devices.keys().next().value!);
    if (before?.address === address && before.instance === a.instance) return;
    this.options.logger.debug({ device: a.deviceId, address }, 'found a device on the LAN');
    // A newcomer may not know us yet: answer now rather than at the next round.
    this.replySoon();
    this.options.onFound?.({ deviceId: a.deviceId, address, lastSeenMs: device.lastSeenMs });
  }

  private mayVerify(): boolean {
    const second = Math.floor(this.now / 1000);
    if (this.verifyBudget.second !== second) this.verifyBudget = { second, left: MAX_VERIFY_PER_SECOND };
    return this.verifyBudget.left-- > 0;
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
