/**
 * Resuming an interrupted download: B is killed (-9) in the middle of pulling a 512 MiB file
 * from A. After the restart B must reuse the blocks already verified in its temporary file
 * instead of fetching them again, end up with the exact bytes, and leave no temp file behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  describeRun,
  folderStatus,
  MiB,
  peerStatus,
  settledCounters,
  sha256File,
  sleep,
  useCluster,
  waitFor,
  withLogsOnError,
  type FerryNode,
} from './harness.js';

const cluster = useCluster('resume');
const FOLDER = 'big';
const FILE = 'big.bin';
const SIZE = 512 * MiB;
const SLACK = 8 * MiB;
/** Temp-file fill (allocated blocks / size) at which B is killed; must stay within 20-70 %. */
const KILL_AT = 0.4;

/** Streams `size` random bytes to `file` (4 MiB at a time, never all in memory); returns their sha256. */
async function streamRandomFile(file: string, size: number): Promise<string> {
  const h = createHash('sha256');
  async function* chunks() {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, 4 * MiB);
      const buf = randomBytes(n);
      h.update(buf);
      left -= n;
      yield buf;
    }
  }
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  await pipeline(Readable.from(chunks()), fs.createWriteStream(file));
  return h.digest('hex');
}

function tempFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => n.startsWith('.ferry.tmp.'));
  } catch {
    return [];
  }
}

describe('resume after kill -9', () => {
  it('reuses the verified blocks of the temp file after a crash', async () => {
    const c = await cluster.ready;
    let a!: FerryNode;
    let b!: FerryNode;
    let expectedHash = '';
    await withLogsOnError(c, async () => {
      a = await c.createNode('a');
      b = await c.createNode('b');
      await a.addFolder(FOLDER);
      await b.addFolder(FOLDER);
      expectedHash = await streamRandomFile(a.file(FOLDER, FILE), SIZE);
      await a.addPeer(b, [FOLDER]);
      await b.addPeer(a, [FOLDER]);
      await a.start();
      // A has indexed the whole file before B asks for it.
      await waitFor(async () => folderStatus(await a.status(), FOLDER)?.localBytes === SIZE, {
        message: async () => `A to index ${FILE} (${JSON.stringify(folderStatus(await a.status(), FOLDER))})`,
      });
      await b.start();
    });

    // Catch B with 20-70 % of the temp file's blocks written (aiming at about 40 %, so that
    // reusing them or not makes a clear difference in what B downloads), then kill it.
    const bFolder = b.folderPath(FOLDER);
    const target = b.file(FOLDER, FILE);
    let tmp: string | undefined;
    let caughtAt = 0;
    const deadline = Date.now() + 40_000;
    for (;;) {
      if (fs.existsSync(target)) {
        throw new Error(`the transfer of ${SIZE} bytes finished before B could be killed mid-way (last temp fill seen: ${(caughtAt * 100).toFixed(1)} %); cannot test resuming`);
      }
      const names = tempFiles(bFolder);
      if (names.length > 1) throw new Error(`more than one temp file in B's folder: ${names.join(', ')}`);
      if (names.length === 1) {
        tmp = path.join(bFolder, names[0]!);
        const st = fs.statSync(tmp, { throwIfNoEntry: false });
        if (st) {
          const fill = (st.blocks * 512) / SIZE;
          caughtAt = fill;
          if (fill > 0.7) {
            throw new Error(`B's temp file went past 70 % (${(fill * 100).toFixed(1)} %) between two polls 20 ms apart; cannot kill it mid-way`);
          }
          if (fill >= KILL_AT) break;
        }
      }
      if (Date.now() > deadline) throw new Error(`B did not get 20 % of ${FILE} into a temp file within 40 s (temp files: ${tempFiles(bFolder).join(', ') || 'none'})`);
      await sleep(20);
    }
    await b.kill9();
    const tempSt = fs.statSync(tmp!);
    const present = Math.min(SIZE, tempSt.blocks * 512);
    expect(present / SIZE, 'temp file fill after the kill').toBeGreaterThanOrEqual(0.2);
    expect(present / SIZE, 'temp file fill after the kill').toBeLessThanOrEqual(0.7);
    expect(tempSt.size, 'the temp file should be pre-sized to the whole file').toBe(SIZE);
    expect(fs.existsSync(target), `${FILE} appeared on B although B was killed mid-way`).toBe(false);
    console.log(`killed B with ${(present / MiB).toFixed(1)} MiB (${((100 * present) / SIZE).toFixed(1)} %) in ${path.basename(tmp!)} (seen ${(caughtAt * 100).toFixed(1)} % just before)`);

    // Restart B; the file must arrive intact.
    await b.start();
    await waitFor(() => fs.existsSync(target) && fs.statSync(target).size === SIZE, {
      timeoutMs: 45_000,
      message: async () => `${FILE} to arrive on B after the restart (B: ${JSON.stringify(folderStatus(await b.status(), FOLDER))})`,
    });
    expect(await sha256File(target), `${FILE} on B differs from A's`).toBe(expectedHash);

    // What B downloaded after the restart (counters restart with the process).
    const counters = (await settledCounters([b])).get('b')!;
    const statusB = await b.status();
    const fromA = peerStatus(statusB, a.deviceId);
    expect(fromA, describeRun({ code: 0, signal: null, stdout: JSON.stringify(statusB), stderr: '', command: 'ferry status --json' }, 'A missing from B\'s peers')).toBeDefined();
    const limit = SIZE - 0.8 * present + SLACK;
    console.log(`B received ${(counters.bytesIn / MiB).toFixed(1)} MiB after the restart (limit ${(limit / MiB).toFixed(1)} MiB; ${(present / MiB).toFixed(1)} MiB were already in the temp file)`);
    expect(counters.bytesIn, 'B received nothing after the restart: the counters do not work, or B did not sync').toBeGreaterThan(0);
    expect(
      counters.bytesIn,
      `B received ${counters.bytesIn} bytes after the restart, but ${present} bytes were already in its temp file: it should have received less than ${SIZE} - 0.8 × ${present} + ${SLACK} = ${limit}`,
    ).toBeLessThan(limit);

    await waitFor(async () => folderStatus(await b.status(), FOLDER)?.inSync, { message: 'B to report the folder in sync' });
    expect(tempFiles(bFolder), 'temp files left in B\'s folder after the sync').toEqual([]);
    expect(tempFiles(a.folderPath(FOLDER)), 'temp files left in A\'s folder').toEqual([]);
  }, 60_000);
});
