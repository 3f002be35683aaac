/**
 * The file watcher of a real node (full rescans only every 600 s): changes inside directories
 * that a pull made in one go, and inside a directory the user renamed, reach the peer at once.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { exists, uniqueText, useCluster, waitConverged, waitForAbsent, waitForContent, writeFile } from './harness.js';

const cluster = useCluster('watcher');

describe('the watcher of a running node', () => {
  it('sees edits in nested directories a pull made, in a renamed directory, and in one made again', async () => {
    const c = cluster.get();
    const [a, b] = [await c.createNode('watchA'), await c.createNode('watchB')];
    for (const n of [a, b]) await n.addFolder('w');
    await a.addPeer(b, ['w']);
    await b.addPeer(a, ['w']);
    for (const n of [a, b]) await n.start();

    // A pull makes p, p/q and p/q/r on B at once.
    const first = uniqueText('made on A');
    await writeFile(a.file('w', 'p/q/r/deep.txt'), first);
    await waitForContent(b, 'w', 'p/q/r/deep.txt', first);

    const edited = uniqueText('edited on B inside directories the pull made');
    await writeFile(b.file('w', 'p/q/r/deep.txt'), edited);
    await writeFile(b.file('w', 'p/q/new.txt'), edited);
    await waitForContent(a, 'w', 'p/q/r/deep.txt', edited);
    await waitForContent(a, 'w', 'p/q/new.txt', edited);

    // The user renames p on B, then writes under its subdirectories.
    await rename(b.file('w', 'p'), b.file('w', 'moved'));
    await waitForContent(a, 'w', 'moved/q/r/deep.txt', edited);
    await waitForAbsent(a, 'w', 'p');
    const afterRename = uniqueText('written under the renamed directory');
    await writeFile(b.file('w', 'moved/q/r/after.txt'), afterRename);
    await waitForContent(a, 'w', 'moved/q/r/after.txt', afterRename);

    // Deleted and made again at once, deeper this time.
    await rm(b.file('w', 'moved'), { recursive: true });
    await mkdir(b.file('w', 'moved/x/y'), { recursive: true });
    await new Promise((r) => setTimeout(r, 300));
    const again = uniqueText('written in a directory made again');
    await writeFile(b.file('w', 'moved/x/y/again.txt'), again);
    await waitForContent(a, 'w', 'moved/x/y/again.txt', again);
    await waitConverged([a, b], 'w');
    expect(await exists(a.file('w', 'moved/q'))).toBe(false);
  }, 90_000);
});
