/**
 * For the API's tests: a RemoteApi over a throw-away folder `docs` (with `docs/sub/`), users
 * alice (read-write) and bob (read-only) with a token each, served by a plain HTTP server on
 * 127.0.0.1 that routes `Expect: 100-continue` the way the node's server does.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FolderSync } from '../engine/folder-sync.js';
import { AccessStore } from '../index-store/access-store.js';
import { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { RemoteApi } from './api-server.js';
import { hashPassword } from './password.js';
import { newToken, tokenHash } from './tokens.js';

export interface TestApi {
  readonly dir: string;
  /** The folder `docs`. */
  readonly root: string;
  readonly api: RemoteApi;
  readonly server: Server;
  readonly port: number;
  readonly aliceToken: string;
  readonly bobToken: string;
  close(): Promise<void>;
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

export async function startTestApi(options: {
  maxUploadBytes: number;
  /** Runs on the folder root before the API opens (files the tests expect). */
  prepare?: (root: string, dir: string) => void;
  /** More folders, none of them shared with alice or bob. */
  otherFolders?: string[];
  /** Called with the paths the API reports as changed, as the folder's engine would be. */
  onLocalChanged?: (paths: string[]) => void;
}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-api-'));
  const root = join(dir, 'docs');
  mkdirSync(join(root, 'sub'), { recursive: true });
  options.prepare?.(root, dir);
  const db = join(dir, 'index.db');
  const index = SqliteIndexStore.open(db);
  index.addFolder('docs', root);
  for (const id of options.otherFolders ?? []) index.addFolder(id, join(dir, id));
  index.close();
  const access = AccessStore.open(db);
  access.addUser('alice', await hashPassword('alice-password'), { docs: 'rw' });
  access.addUser('bob', await hashPassword('bob-password'), { docs: 'ro' });
  const aliceToken = newToken();
  const bobToken = newToken();
  access.addToken('alice', tokenHash(aliceToken), 'test');
  access.addToken('bob', tokenHash(bobToken), 'test');
  access.close();
  const stubSync = { localChanged: (paths: string[]) => options.onLocalChanged?.(paths), settle: async () => {} } as unknown as FolderSync;
  const api = RemoteApi.open({ databaseFile: db, folderSync: (id) => (id === 'docs' ? stubSync : undefined), logger: silent, maxUploadBytes: options.maxUploadBytes });
  const server = createServer();
  server.on('request', (req, res) => api.handle(req, res));
  server.on('checkContinue', (req, res) => api.handle(req, res, true));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    dir, root, api, server, port, aliceToken, bobToken,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
