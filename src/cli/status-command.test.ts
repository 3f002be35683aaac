import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STATUS_KEY, type NodeRuntimeStatus } from '../daemon/node-status.js';
import type { FolderStatus } from '../engine/folder-sync.js';
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
});
