/**
 * LAN discovery with real nodes: peers added by device ID alone find each other, on the
 * loopback network (one discovery port per cluster) and across a real network between two
 * network namespaces this test creates, where the nodes run with every default.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueText, useCluster, waitConverged, waitFor, waitForContent, writeFile } from './harness.js';

const cluster = useCluster('discovery');

describe('LAN discovery', () => {
  it('peers added without an address find each other; a device not added is listed as nearby', async () => {
    const c = cluster.get();
    const [a, b, stranger] = [await c.createNode('findA'), await c.createNode('findB'), await c.createNode('stranger')];
    for (const n of [a, b]) await n.addFolder('found');
    await a.addPeer(b, ['found'], { discovered: true });
    await b.addPeer(a, ['found'], { discovered: true });
    expect((await a.status()).peers[0]!.addresses).toEqual([]);
    for (const n of [a, b, stranger]) await n.start();

    const text = uniqueText('found on the LAN');
    await writeFile(a.file('found', 'hello.txt'), text);
    await waitForContent(b, 'found', 'hello.txt', text);
    await waitConverged([a, b], 'found');

    const s = await waitFor(async () => {
      const st = await a.status();
      return st.nearbyDevices.some((d) => d.deviceId === stranger.deviceId) ? st : undefined;
    }, { message: 'the stranger listed as nearby on A' });
    const peerB = s.peers.find((p) => p.deviceId === b.deviceId)!;
    expect(peerB.connected).toBe(true);
    expect(peerB.discoveredAddress).toBe(b.address);
    expect(s.nearbyDevices.find((d) => d.deviceId === stranger.deviceId)!.address).toBe(stranger.address);
    // Nearby is not trusted: the stranger is neither a peer nor connected.
    expect(s.peers.map((p) => p.deviceId)).toEqual([b.deviceId]);
  }, 60_000);

  describe('across a network between two namespaces', () => {
    const tag = `${process.pid % 100000}`;
    const ns = [`ferry-${tag}-a`, `ferry-${tag}-b`];
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    afterAll(async () => {
      for (const n of cluster.get().nodes) await n.shutdown();
      for (const name of ns) {
        try {
          ip('netns', 'del', name);
        } catch {
          // not created
        }
      }
    });

    it('two nodes on all defaults (port 22100, broadcast on their network) sync with peers added by ID', async () => {
      try {
        for (const name of ns) ip('netns', 'add', name);
        ip('link', 'add', `fva${tag}`, 'type', 'veth', 'peer', 'name', `fvb${tag}`);
        ['a', 'b'].forEach((side, i) => {
          ip('link', 'set', `fv${side}${tag}`, 'netns', ns[i]!);
          ip('-n', ns[i]!, 'addr', 'add', `10.231.0.${i + 1}/24`, 'brd', '+', 'dev', `fv${side}${tag}`);
          ip('-n', ns[i]!, 'link', 'set', `fv${side}${tag}`, 'up');
          ip('-n', ns[i]!, 'link', 'set', 'lo', 'up');
        });
      } catch (err) {
        throw new Error(`this test creates two network namespaces and needs root with iproute2 (\`ip netns\`): ${(err as Error).message}`);
      }
      const c = cluster.get();
      const [a, b] = [await c.createNode('lanA'), await c.createNode('lanB')];
      for (const n of [a, b]) await n.addFolder('lan');
      await a.addPeer(b, ['lan'], { discovered: true });
      await b.addPeer(a, ['lan'], { discovered: true });
      await a.start({ netns: ns[0] });
      await b.start({ netns: ns[1] });

      const text = uniqueText('across the LAN');
      await writeFile(b.file('lan', 'note.txt'), text);
      await waitForContent(a, 'lan', 'note.txt', text);
      await waitConverged([a, b], 'lan');
      const peer = (await a.status()).peers.find((p) => p.deviceId === b.deviceId)!;
      expect(peer.discoveredAddress).toBe('10.231.0.2:22100');
      expect(peer.connected).toBe(true);
    }, 60_000);
  });
});
