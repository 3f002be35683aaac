/**
 * LAN discovery over real UDP on the loopback network (127.255.255.255): the packet format and
 * its validation, which networks a node announces on, and two nodes finding each other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { formatDeviceId } from '../core/device-id.js';
import { isFerryError } from '../core/errors.js';
import {
  broadcastTargets, encodeAnnouncement, LanDiscovery, parseAnnouncement, type DiscoveredDevice, type LanDiscoveryOptions,
} from './lan-discovery.js';
import { silentLogger } from './logger.js';

const deviceId = (seed: string) => formatDeviceId(createHash('sha256').update(seed).digest());
/** A device ID with one character changed: its check character no longer matches. */
const typo = (id: string) => id.slice(0, 10) + (id[10] === 'A' ? 'B' : 'A') + id.slice(11);
const instance = () => randomBytes(8).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A UDP port free right now (tests of other files may run at the same time). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('announcement packets', () => {
  const id = deviceId('a');

  it('round-trip and come back with the canonical device ID', () => {
    const a = { deviceId: id, port: 22100, instance: instance() };
    expect(parseAnnouncement(encodeAnnouncement(a))).toEqual(a);
    const lower = Buffer.from(JSON.stringify({ magic: 'ferry-discovery/1', deviceId: id.toLowerCase().replace(/-/g, ''), port: 1, instance: a.instance }));
    expect(parseAnnouncement(lower).deviceId).toBe(id);
  });

  it('are rejected with a reason when anything is wrong', () => {
    const good = { magic: 'ferry-discovery/1', deviceId: id, port: 22100, instance: instance() };
    const bad: [unknown, RegExp][] = [
      ['not json', /not JSON/],
      [{ ...good, magic: 'syncthing' }, /not a Ferry announcement/],
      [null, /not a Ferry announcement/],
      [{ ...good, deviceId: 42 }, /without a device ID/],
      [{ ...good, deviceId: typo(id) }, /device ID/],
      [{ ...good, port: 0 }, /invalid port/],
      [{ ...good, port: 65536 }, /invalid port/],
      [{ ...good, port: '22100' }, /invalid port/],
      [{ ...good, instance: 'x'.repeat(16) }, /invalid instance/],
      [{ ...good, pad: 'x'.repeat(600) }, /at most 512/],
    ];
    for (const [value, reason] of bad) {
      const packet = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
      let error: unknown;
      try {
        parseAnnouncement(packet);
      } catch (err) {
        error = err;
      }
      expect(isFerryError(error, 'INVALID_MESSAGE'), `${packet.toString().slice(0, 60)} rejected`).toBe(true);
      expect((error as Error).message).toMatch(reason);
    }
  });
});

describe('where a node announces itself', () => {
  const interfaces = {
    lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', internal: true, mac: '', cidr: '127.0.0.1/8' }],
    eth0: [
      { address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', internal: false, mac: '', cidr: '192.168.1.20/24' },
      { address: 'fd00::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', internal: false, mac: '', cidr: 'fd00::2/64', scopeid: 0 },
    ],
    wlan0: [{ address: '10.0.5.7', netmask: '255.255.0.0', family: 'IPv4', internal: false, mac: '', cidr: '10.0.5.7/16' }],
  } as const satisfies NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;

  it('on every IPv4 network when it listens on all addresses, on one when it listens on one', () => {
    expect(broadcastTargets('0.0.0.0', interfaces)).toEqual(['192.168.1.255', '10.0.255.255']);
    expect(broadcastTargets('::', interfaces)).toEqual(['192.168.1.255', '10.0.255.255']);
    expect(broadcastTargets('10.0.5.7', interfaces)).toEqual(['10.0.255.255']);
    expect(broadcastTargets('172.16.0.1', interfaces)).toEqual([]);
  });

  it('only on this machine when it listens on loopback', () => {
    expect(broadcastTargets('127.0.0.1', interfaces)).toEqual(['127.255.255.255']);
    expect(broadcastTargets('localhost', interfaces)).toEqual(['127.255.255.255']);
  });
});

describe('two nodes on one machine', () => {
  const running: LanDiscovery[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    for (const s of sockets.splice(0)) s.close();
  });

  async function node(name: string, port: number, listenPort: number, extra: Partial<LanDiscoveryOptions> = {}) {
    const found: DiscoveredDevice[] = [];
    const d = await LanDiscovery.start({
      deviceId: deviceId(name), listenHost: '127.0.0.1', listenPort, port, logger: silentLogger, onFound: (f) => found.push(f), ...extra,
    });
    running.push(d);
    return { d, found };
  }

  async function sender(): Promise<Socket> {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.setBroadcast(true);
    sockets.push(s);
    return s;
  }

  it('find each other at once, by the address they listen on, and not themselves', async () => {
    const port = await freeUdpPort();
    const a = await node('a', port, 40001);
    const b = await node('b', port, 40002);
    // b announced at start, a answered the newcomer: both know each other within moments.
    await waitUntil(() => a.d.addressOf(deviceId('b')) !== undefined && b.d.addressOf(deviceId('a')) !== undefined, 'both found');
    expect(a.d.addressOf(deviceId('b'))).toBe('127.0.0.1:40002');
    expect(b.d.addressOf(deviceId('a'))).toBe('127.0.0.1:40001');
    expect(a.d.list().map((d) => d.deviceId)).toEqual([deviceId('b')]);
    expect(a.found.map((f) => f.address)).toEqual(['127.0.0.1:40002']);

    // Hearing the same announcement again is not news; a restart (new instance) or a move is.
    await sleep(1200);
    expect(a.found).toHaveLength(1);
    await b.d.stop();
    running.splice(running.indexOf(b.d), 1);
    await node('b', port, 40003);
    await waitUntil(() => a.found.length === 2, 'the restarted node found again');
    expect(a.d.addressOf(deviceId('b'))).toBe('127.0.0.1:40003');
  });

  it('ignore packets that are not valid announcements, and forget devices not heard for long', async () => {
    const port = await freeUdpPort();
    let offset = 0;
    const clock = { now: () => Date.now() + offset, setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), setInterval: (fn: () => void, ms: number) => setInterval(fn, ms) };
    const a = await node('a', port, 40001, { clock });
    const s = await sender();
    const send = (packet: Buffer | string) => new Promise<void>((r) => s.send(packet, port, '127.255.255.255', () => r()));
    for (const junk of ['', 'hello', '{"magic":"ferry-discovery/1"}', JSON.stringify({ magic: 'ferry-discovery/1', deviceId: typo(deviceId('d')), port: 1, instance: instance() })]) await send(junk);
    await send(encodeAnnouncement({ deviceId: deviceId('c'), port: 40005, instance: instance() }));
    await waitUntil(() => a.found.length === 1, 'the valid announcement');
    expect(a.d.list().map((d) => [d.deviceId, d.address])).toEqual([[deviceId('c'), '127.0.0.1:40005']]);

    offset = 96_000; // three missed announcement rounds and a margin
    expect(a.d.addressOf(deviceId('c'))).toBeUndefined();
    expect(a.d.list()).toEqual([]);
  });

  it('a port held by a program that does not share it is an error at start', async () => {
    const port = await freeUdpPort();
    const holder = createSocket('udp4'); // no SO_REUSEADDR: the port cannot be shared
    sockets.push(holder);
    await new Promise<void>((r) => holder.bind(port, () => r()));
    await expect(LanDiscovery.start({ deviceId: deviceId('a'), listenHost: '127.0.0.1', listenPort: 1, port, logger: silentLogger })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('remember at most 256 devices, whatever floods the network', async () => {
    const port = await freeUdpPort();
    const a = await node('a', port, 40001);
    const s = await sender();
    for (let i = 0; i < 300; i++) {
      if (i % 50 === 0) await sleep(20); // within the socket's receive buffer
      await new Promise<void>((r) => s.send(encodeAnnouncement({ deviceId: deviceId(`flood${i}`), port: 1000 + i, instance: instance() }), port, '127.255.255.255', () => r()));
    }
    await waitUntil(() => a.d.addressOf(deviceId('flood299')) !== undefined, 'the last announcement');
    expect(a.d.list()).toHaveLength(256);
    expect(a.d.addressOf(deviceId('flood0'))).toBeUndefined();
  });
});
