import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STATUS_KEY, type NodeRuntimeStatus } from '../daemon/node-status.js';
import type { FolderStatus } from '../engine/folder-sync.js';
import { fileRecord } from '../engine/test-support.js';
import { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { statusReport } from './status-command.js';

let dir: string;
let store: SqliteIndexStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-status-'));
  store = SqliteIndexStore.open(join(dir, 'index.db'));
  store.addFolder('docs', join(dir, 'docs'));
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const folderNow: FolderStatus = { state: 'syncing', needFiles: 2, needBytes: 2048, completion: 40, localFiles: 1, localBytes: 10, errors: [{ path: 'big.bin', message: 'not enough free space' }], conflicts: [], mode: 'send-receive', notApplied: 0, notSent: 0 };
const runtime = (heartbeat: number): NodeRuntimeStatus => ({
  pid: process.pid, running: true, listen: '127.0.0.1:22100', startedAt: '2026-12-07T10:00:00.000Z', heartbeat, folders: { docs: folderNow }, peers: {},
});

describe('status report', () => {
  it('a published status that went stale (the node could not write it) means stopped, unless the node answered itself', () => {
    store.setStatus(STATUS_KEY, runtime(Date.now() - 60_000));
    const stale = statusReport(store, 'DEVICE');
    expect(stale.running).toBe(false);
    expect(stale.folders[0]).toMatchObject({ id: 'docs', state: 'stopped', errors: [] });

    const live = statusReport(store, 'DEVICE', runtime(Date.now() - 60_000));
    expect(live.running).toBe(true);
    expect(live.listen).toBe('127.0.0.1:22100');
    expect(live.folders[0]).toMatchObject({ id: 'docs', state: 'syncing', needFiles: 2, errors: folderNow.errors });
  });

  it('a fresh published status is used when the node did not answer', () => {
    store.setStatus(STATUS_KEY, runtime(Date.now()));
    expect(statusReport(store, 'DEVICE')).toMatchObject({ running: true, folders: [{ id: 'docs', state: 'syncing' }] });
  });

  it("shows for each peer how much of this device's state of each shared folder it lacks, by the index it sent", () => {
    const me = 'MEMEMEM-AAAAAAA';
    const peer = 'PEERPEE-BBBBBBB';
    store.upsertPeer(peer, ['127.0.0.1:22100']);
    store.shareFolder('docs', peer);
    const progress = () => statusReport(store, me).peers[0]!.folders;
    expect(progress()).toEqual([{ id: 'docs', indexKnown: false, upToDate: false, needFiles: 0, needBytes: 0 }]);

    const local = (path: string, overrides: Parameters<typeof fileRecord>[1]) => ({ record: fileRecord(path, { modifiedBy: 'MEMEMEM', ...overrides }), scannedAtMs: 0, chunkAvg: 0 });
    store.commitLocal('docs', [
      local('same.txt', { size: 10, version: { MEMEMEM: 1 } }),
      local('behind.txt', { size: 20, version: { MEMEMEM: 2 } }),
      local('ahead.txt', { size: 40, version: { MEMEMEM: 1 } }),
      local('gone.txt', { deleted: true, version: { MEMEMEM: 2 } }),
      local('gone-there-too.txt', { deleted: true, version: { MEMEMEM: 2 } }),
      local('never-there.txt', { deleted: true, version: { MEMEMEM: 1 } }),
      local('new.txt', { size: 5, version: { MEMEMEM: 1 } }),
    ]);
    store.resetRemote('docs', peer, 'index1');
    const remote = (path: string, overrides: Parameters<typeof fileRecord>[1]) => fileRecord(path, { modifiedBy: 'PEERPEE', ...overrides });
    store.putRemote('docs', peer, [
      remote('same.txt', { size: 10, version: { MEMEMEM: 1 } }),
      remote('behind.txt', { size: 20, version: { MEMEMEM: 1 } }),
      remote('ahead.txt', { size: 41, version: { PEERPEE: 1, MEMEMEM: 1 } }), // newer there: this device lacks it, not the peer
      remote('gone.txt', { size: 3, version: { MEMEMEM: 1 } }),
      remote('gone-there-too.txt', { deleted: true, version: { PEERPEE: 5 } }),
    ]);
    // behind.txt (20 B), the deletion of gone.txt, and new.txt (5 B).
    expect(progress()).toEqual([{ id: 'docs', indexKnown: true, upToDate: false, needFiles: 3, needBytes: 25 }]);
    // A receive-only folder does not send what this device made.
    store.updateFolder('docs', { mode: 'receive-only' });
    expect(progress()).toEqual([{ id: 'docs', indexKnown: true, upToDate: true, needFiles: 0, needBytes: 0 }]);
    store.updateFolder('docs', { mode: 'send-receive' });
    store.putRemote('docs', peer, [
      remote('behind.txt', { size: 20, version: { MEMEMEM: 2 } }),
      remote('gone.txt', { deleted: true, version: { MEMEMEM: 2 } }),
      remote('new.txt', { size: 5, version: { MEMEMEM: 1 } }),
    ]);
    expect(progress()).toEqual([{ id: 'docs', indexKnown: true, upToDate: true, needFiles: 0, needBytes: 0 }]);
  });
});
