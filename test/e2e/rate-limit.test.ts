/**
 * `ferry start --max-send-rate` / `--max-recv-rate` and `ferry limits`: file data between peers
 * goes no faster than the limit (either side's), arrives whole; a running node takes a new
 * limit without a restart; a bad value stops the node from starting.
 * Loopback moves these files in well under a second without a limit, so a lower bound on the
 * time taken is what shows the limit at work. Loopback counts as the LAN, which the limits
 * leave alone unless `ferry limits --lan on`.
 */
import * as fsp from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { KiB, sha256File, useCluster, waitFor, withLogsOnError, writeRandomFile, type FerryNode } from './harness.js';

const cluster = useCluster('rate-limit');
const FOLDER = 'media';
const RATE = '512K';
const FILES = 6;
const FILE_SIZE = 256 * KiB;
/** 1.5 MiB at 512 KiB/s, less the quarter second a limiter lets go at once: 2.75 s. */
const AT_LEAST_MS = 2_300;

async function addFilesAndTime(from: FerryNode, to: FerryNode, label: string): Promise<number> {
  const sums = new Map<string, string>();
  const started = Date.now();
  for (let i = 0; i < FILES; i++) sums.set(`${label}-${i}.bin`, await writeRandomFile(from.file(FOLDER, `${label}-${i}.bin`), FILE_SIZE));
  for (const [name, sum] of sums) {
    await waitFor(async () => (await sha256File(to.file(FOLDER, name)).catch(() => '')) === sum, { message: `${name} to reach ${to.name} intact` });
  }
  return Date.now() - started;
}

describe('rate limits', () => {
  it('a sender started with --max-send-rate, and a running receiver told `ferry limits --recv`, pace file data; the files arrive whole', async () => {
    const c = await cluster.ready;
    let a!: FerryNode;
    let b!: FerryNode;
    await withLogsOnError(c, async () => {
      a = await c.createNode('a');
      b = await c.createNode('b');
      await a.addFolder(FOLDER);
      await b.addFolder(FOLDER);
      await a.addPeer(b, [FOLDER]);
      await b.addPeer(a, [FOLDER]);
      for (const n of [a, b]) await n.ferryOk('limits', '--lan', 'on');
      await a.start({ args: ['--max-send-rate', RATE] });
      await b.start();
      await waitFor(async () => (await a.status()).peers.some((p) => p.connected), { message: 'A and B to connect' });
    });

    const sent = await addFilesAndTime(a, b, 'sent');
    expect(sent, 'ms for 1.5 MiB from a sender limited to 512 KiB/s').toBeGreaterThanOrEqual(AT_LEAST_MS);
    const statusA = await a.ferryOk('status');
    expect(statusA.stdout).toContain('Rates    send 512.0 KiB/s, receive unlimited (file data, all peers together, LAN peers too)');
    expect(JSON.parse((await a.ferryOk('status', '--json')).stdout)).toMatchObject({ maxSendRate: 512 * KiB, maxReceiveRate: null, limitLan: true });

    // `ferry limits` on a running node: stored, and applied without a restart.
    await a.stop();
    await a.start();
    await b.ferryOk('limits', '--recv', RATE);
    await waitFor(async () => JSON.parse((await b.ferryOk('status', '--json')).stdout).maxReceiveRate === 512 * KiB, { message: 'B to apply the stored receive limit' });
    await waitFor(async () => (await b.status()).peers.some((p) => p.connected), { message: 'A and B to connect again' });
    const received = await addFilesAndTime(a, b, 'received');
    expect(received, 'ms for 1.5 MiB to a receiver limited to 512 KiB/s').toBeGreaterThanOrEqual(AT_LEAST_MS);
    expect((await b.ferryOk('limits')).stdout).toBe('Send     unlimited\nReceive  512.0 KiB/s\nLAN      limited too\n');

    // The default: the limit stays, but a peer on the LAN (loopback here) is not held to it.
    await b.ferryOk('limits', '--lan', 'off');
    await waitFor(async () => JSON.parse((await b.ferryOk('status', '--json')).stdout).limitLan === false, { message: 'B to stop limiting LAN peers' });
    await waitFor(async () => (await b.status()).peers.some((p) => p.connected), { message: 'A and B to connect again' });
    expect((await b.ferryOk('status')).stdout).toContain('Rates    send unlimited, receive 512.0 KiB/s (file data, all peers together; LAN peers not limited)');
    const onLan = await addFilesAndTime(a, b, 'lan');
    expect(onLan, 'ms for 1.5 MiB to a receiver whose limit leaves LAN peers alone').toBeLessThan(AT_LEAST_MS);

    await b.ferryOk('limits', '--recv', 'off');
    await waitFor(async () => JSON.parse((await b.ferryOk('status', '--json')).stdout).maxReceiveRate === null, { message: 'B to lift its receive limit' });
    expect(JSON.parse((await b.ferryOk('limits', '--json')).stdout)).toEqual({ maxSendRate: null, maxReceiveRate: null, limitLan: false });

    for (const n of [a, b]) {
      const log = await fsp.readFile(n.logPath, 'utf8');
      expect(log, `${n.name}'s log`).not.toMatch(/timed out|cannot sync file/);
    }
  });

  it('a rate that is not one refuses to start, saying which option is wrong', async () => {
    const c = await cluster.ready;
    const n = await c.createNode('bad');
    for (const [option, value, said] of [
      ['--max-send-rate', 'fast', '--max-send-rate "fast": use a size like 500K, 2M or 1G'],
      ['--max-recv-rate', '0', '--max-recv-rate must be at least 1 byte per second'],
    ] as const) {
      const r = await n.ferry('start', '--listen', n.address, '--no-discovery', option, value);
      expect(r.code, `${option} ${value}`).toBe(2);
      expect(r.stderr).toContain(said);
    }
    expect(n.running).toBe(false);
    const refused = await n.ferry('limits', '--send', '2 megabits');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--send "2 megabits": use a size like 500K, 2M or 1G');
    const lan = await n.ferry('limits', '--lan', 'sometimes');
    expect(lan.code).toBe(2);
    expect(lan.stderr).toContain('--lan "sometimes": give on or off');
    expect(JSON.parse((await n.ferryOk('limits', '--json')).stdout)).toEqual({ maxSendRate: null, maxReceiveRate: null, limitLan: false });
  });
});
