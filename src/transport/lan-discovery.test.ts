/**
 * LAN discovery over real UDP on the loopback network (127.255.255.255): the signed packet and
 * its validation, which networks a node announces on, and nodes finding each other; forged and
 * replayed announcements change nothing.
 */
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isFerryError } from '../core/errors.js';
import { createIdentity, type Identity } from './identity.js';
import {
  broadcastTargets, encodeAnnouncement, LanDiscovery, parseAnnouncement, type Announcement, type DiscoveredDevice, type LanDiscoveryOptions,
} from './lan-discovery.js';
import { silentLogger } from './logger.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const instance = () => randomBytes(8).toString('hex');
/** A device ID with one character changed: its check character no longer matches. */
const typo = (id: string) => id.slice(0, 10) + (id[10] === 'A' ? 'B' : 'A') + id.slice(11);
const signer = (id: Identity) => ({ certDer: id.certDer, key: createPrivateKey(id.keyPem) });
/** A signature by `id` over `text`, as announcements are signed. */
const signText = (id: Identity, text: string) => sign('sha256', Buffer.from(text), createPrivateKey(id.keyPem)).toString('base64');
/** A signed announcement of `id`, as sent from 127.0.0.1. */
const announcement = (id: Identity, fields: Partial<Announcement> = {}) =>
  encodeAnnouncement({ deviceId: id.deviceId, port: 40005, instance: instance(), addresses: ['127.0.0.1'], ...fields }, signer(id));

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

let a: Identity;
let b: Identity;
let c: Identity;
beforeAll(async () => {
  [a, b, c] = await Promise.all([createIdentity('a'), createIdentity('b'), createIdentity('c')]);
});

describe('announcement packets', () => {
  it('round-trip, signed by the device', () => {
    const sent = { deviceId: a.deviceId, port: 22100, instance: instance(), addresses: ['192.168.1.20', '10.0.5.7'] };
    expect(parseAnnouncement(encodeAnnouncement(sent, signer(a)))).toEqual(sent);
  });

  it('are rejected with a reason when anything is wrong, forged or tampered with', () => {
    const good = JSON.parse(announcement(a).toString()) as { signed: string; sig: string };
    const fields = JSON.parse(good.signed) as Record<string, unknown>;
    /** Re-signed by `a` with some fields changed: well signed, but wrong inside. */
    const resigned = (changes: Record<string, unknown>) => {
      const signed = JSON.stringify({ ...fields, ...changes });
      return JSON.stringify({ signed, sig: signText(a, signed) });
    };
    const bad: [string, RegExp][] = [
      ['not json', /not JSON/],
      [JSON.stringify({ hello: 1 }), /not a Ferry announcement/],
      ['null', /not a Ferry announcement/],
      [JSON.stringify({ signed: JSON.stringify({ ...fields, magic: 'syncthing' }), sig: good.sig }), /not a Ferry announcement/],
      [resigned({ deviceId: 42 }), /without a device ID/],
      [resigned({ deviceId: typo(a.deviceId) }), /device ID/],
      [resigned({ port: 0 }), /invalid port/],
      [resigned({ port: '22100' }), /invalid port/],
      [resigned({ instance: 'x'.repeat(16) }), /invalid instance/],
      [resigned({ addresses: ['::1'] }), /invalid addresses/],
      [resigned({ addresses: '127.0.0.1' }), /invalid addresses/],
      [resigned({ cert: undefined }), /without a certificate/],
      // b's certificate under a's ID, signed by a: not a's announcement.
      [resigned({ cert: b.certDer.toString('base64') }), /another device's certificate/],
      // a's announcement with the port changed after signing.
      [JSON.stringify({ signed: good.signed.replace('"port":40005', '"port":40006'), sig: good.sig }), /bad signature/],
      // Signed by b, claiming to be a (with a's certificate).
      [JSON.stringify({ signed: good.signed, sig: signText(b, good.signed) }), /bad signature/],
      [JSON.stringify({ signed: good.signed, sig: 'AAAA' }), /bad signature/],
      [JSON.stringify({ ...good, pad: 'x'.repeat(1400) }), /at most 1400/],
    ];
    for (const [text, reason] of bad) {
      let error: unknown;
      try {
        parseAnnouncement(Buffer.from(text));
      } catch (err) {
        error = err;
      }
      expect(isFerryError(error, 'INVALID_MESSAGE'), `${text.slice(0, 80)} rejected`).toBe(true);
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
    const both = [{ address: '192.168.1.20', broadcast: '192.168.1.255' }, { address: '10.0.5.7', broadcast: '10.0.255.255' }];
    expect(broadcastTargets('0.0.0.0', interfaces)).toEqual(both);
    expect(broadcastTargets('::', interfaces)).toEqual(both);
    expect(broadcastTargets('10.0.5.7', interfaces)).toEqual([{ address: '10.0.5.7', broadcast: '10.0.255.255' }]);
    expect(broadcastTargets('172.16.0.1', interfaces)).toEqual([]);
  });

  it('only on this machine when it listens on loopback', () => {
    expect(broadcastTargets('127.0.0.1', interfaces)).toEqual([{ address: '127.0.0.1', broadcast: '127.255.255.255' }]);
    expect(broadcastTargets('localhost', interfaces)).toEqual([{ address: '127.0.0.1', broadcast: '127.255.255.255' }]);
  });
});

describe('nodes on one machine', () => {
  const running: LanDiscovery[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    for (const s of sockets.splice(0)) s.close();
  });

  async function node(id: Identity, port: number, listenPort: number, extra: Partial<LanDiscoveryOptions> = {}) {
    const found: DiscoveredDevice[] = [];
    const d = await LanDiscovery.start({ identity: id, listenHost: '127.0.0.1', listenPort, port, logger: silentLogger, onFound: (f) => found.push(f), ...extra });
    running.push(d);
    return { d, found };
  }

  /** A socket to send packets by hand, from `from` (127.0.0.1 unless said). */
  async function sender(from = '127.0.0.1'): Promise<(packet: Buffer | string, port: number) => Promise<void>> {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((r) => s.bind(0, from, () => r()));
    s.setBroadcast(true);
    sockets.push(s);
    return (packet, port) => new Promise<void>((r) => s.send(packet, port, '127.255.255.255', () => r()));
  }

  it('find each other at once, by the address they listen on, and not themselves', async () => {
    const port = await freeUdpPort();
    const na = await node(a, port, 40001);
    const nb = await node(b, port, 40002);
    // b announced at start, a answered the newcomer: both know each other within moments.
    await waitUntil(() => na.d.addressOf(b.deviceId) !== undefined && nb.d.addressOf(a.deviceId) !== undefined, 'both found');
    expect(na.d.addressOf(b.deviceId)).toBe('127.0.0.1:40002');
    expect(nb.d.addressOf(a.deviceId)).toBe('127.0.0.1:40001');
    expect(na.d.list().map((d) => d.deviceId)).toEqual([b.deviceId]);
    expect(na.found.map((f) => f.address)).toEqual(['127.0.0.1:40002']);

    // Hearing the same announcement again is not news; a restart (new instance) or a move is.
    await sleep(1200);
    expect(na.found).toHaveLength(1);
    await nb.d.stop();
    running.splice(running.indexOf(nb.d), 1);
    await node(b, port, 40003);
    await waitUntil(() => na.found.length === 2, 'the restarted node found again');
    expect(na.d.addressOf(b.deviceId)).toBe('127.0.0.1:40003');
  });

  it('ignore packets that are not valid announcements, and forget devices not heard for long', async () => {
    const port = await freeUdpPort();
    let offset = 0;
    const clock = { now: () => Date.now() + offset, setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), setInterval: (fn: () => void, ms: number) => setInterval(fn, ms) };
    const na = await node(a, port, 40001, { clock });
    const send = await sender();
    for (const junk of ['', 'hello', '{"signed":"{}","sig":""}']) await send(junk, port);
    await send(announcement(c, { port: 40005 }), port);
    await waitUntil(() => na.found.length === 1, 'the valid announcement');
    expect(na.d.list().map((d) => [d.deviceId, d.address])).toEqual([[c.deviceId, '127.0.0.1:40005']]);

    offset = 96_000; // three missed announcement rounds and a margin
    expect(na.d.addressOf(c.deviceId)).toBeUndefined();
    expect(na.d.list()).toEqual([]);
  });

  it('take no announcement replayed from another address, nor one sent from an address it does not sign', async () => {
    const port = await freeUdpPort();
    const na = await node(a, port, 40001);
    // Captured as b sent it (from 127.0.0.1), replayed by someone at 127.0.0.2.
    const genuine = announcement(b, { port: 40002 });
    const elsewhere = await sender('127.0.0.2');
    await elsewhere(genuine, port);
    // c's own announcement, claiming 127.0.0.1 only, but coming from 127.0.0.2.
    await elsewhere(announcement(c, { port: 40009 }), port);
    // The same announcement of b from its own address is taken: the two above were delivered first.
    await (await sender())(genuine, port);
    await waitUntil(() => na.found.length > 0, 'the genuine announcement');
    expect(na.d.list().map((d) => [d.deviceId, d.address])).toEqual([[b.deviceId, '127.0.0.1:40002']]);
  });

  it('check at most 50 signatures a second, whatever floods the network', async () => {
    const port = await freeUdpPort();
    const frozen = Date.now();
    const clock = { now: () => frozen, setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), setInterval: (fn: () => void, ms: number) => setInterval(fn, ms) };
    const na = await node(a, port, 40001, { clock });
    const send = await sender();
    // 60 restarts of c in one (frozen) second: each would be news, but only 50 are checked.
    for (let i = 0; i < 60; i++) {
      if (i % 20 === 0) await sleep(20); // within the socket's receive buffer
      await send(announcement(c), port);
    }
    await sleep(300);
    expect(na.found).toHaveLength(50);
  });

  it('remember a limited number of devices, the most recently heard', async () => {
    const port = await freeUdpPort();
    const na = await node(a, port, 40001, { maxDevices: 2 });
    const send = await sender();
    const d = await createIdentity('d');
    for (const [id, p] of [[b, 1], [c, 2]] as const) {
      await send(announcement(id, { port: 41000 + p }), port);
      await sleep(30);
    }
    await send(announcement(d, { port: 41003 }), port);
    await waitUntil(() => na.d.addressOf(d.deviceId) !== undefined, 'the last device');
    expect(na.d.list().map((x) => x.deviceId)).toEqual([c.deviceId, d.deviceId]);
  });

  it('a port held by a program that does not share it is an error at start', async () => {
    const port = await freeUdpPort();
    const holder = createSocket('udp4'); // no SO_REUSEADDR: the port cannot be shared
    sockets.push(holder);
    await new Promise<void>((r) => holder.bind(port, () => r()));
    await expect(LanDiscovery.start({ identity: a, listenHost: '127.0.0.1', listenPort: 1, port, logger: silentLogger })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
