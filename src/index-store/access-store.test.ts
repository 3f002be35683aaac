import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessStore } from './access-store.js';

let dir: string;
let store: AccessStore;
const hash = (n: number) => Buffer.alloc(32, n);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-access-'));
  store = AccessStore.open(join(dir, 'index.db'));
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AccessStore', () => {
  it('adds users with folder grants, refuses duplicates and bad names, changes grants', () => {
    const u = store.addUser('alice', 'scrypt$x', { docs: 'rw', pics: 'ro' });
    expect(u).toMatchObject({ name: 'alice', admin: false, hasPassword: true, folders: { docs: 'rw', pics: 'ro' } });
    expect(() => store.addUser('alice', undefined, {})).toThrow(expect.objectContaining({ code: 'ALREADY_EXISTS' }));
    expect(() => store.addUser('../x', undefined, {})).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(store.grant('alice', { pics: 'rw' }).folders).toEqual({ docs: 'rw', pics: 'rw' });
    expect(store.addUser('robot', undefined, {}).hasPassword).toBe(false);
    expect(store.listUsers().map((x) => x.name)).toEqual(['alice', 'robot']);
  });

  it('finds users by token hash, honours expiry, and drops tokens with their user', () => {
    store.addUser('alice', 'scrypt$x', {});
    store.addToken('alice', hash(1), 'cli');
    store.addToken('alice', hash(2), 'old', '2000-01-01T00:00:00.000Z');
    expect(store.userForToken(hash(1))?.name).toBe('alice');
    expect(store.userForToken(hash(2))).toBeUndefined();
    expect(store.userForToken(hash(3))).toBeUndefined();
    expect(store.listTokens('alice')[0]!.lastUsedAt).toBeDefined();
    store.removeUser('alice');
    expect(store.userForToken(hash(1))).toBeUndefined();
    expect(store.listTokens()).toEqual([]);
  });

  it('queries the audit log by time, user, path prefix and visibility', () => {
    store.audit({ at: '2026-01-01T00:00:00.000Z', user: 'alice', action: 'upload', folder: 'docs', path: 'a/b.txt', address: '10.0.0.1' });
    store.audit({ at: '2026-01-02T00:00:00.000Z', user: 'bob', action: 'download', folder: 'docs', path: 'ab.txt', address: '10.0.0.2' });
    store.audit({ at: '2026-01-03T00:00:00.000Z', user: 'bob', action: 'delete', folder: 'pics', path: 'a/c.jpg', address: '10.0.0.2', ok: false, error: 'FORBIDDEN' });
    expect(store.queryAudit().map((e) => e.action)).toEqual(['upload', 'download', 'delete']);
    expect(store.queryAudit({ since: '2026-01-02T00:00:00.000Z' }).map((e) => e.action)).toEqual(['download', 'delete']);
    expect(store.queryAudit({ user: 'bob' }).map((e) => e.action)).toEqual(['download', 'delete']);
    expect(store.queryAudit({ path: 'docs/a' }).map((e) => e.path)).toEqual(['a/b.txt']);
    expect(store.queryAudit({ path: 'docs' }).length).toBe(2);
    expect(store.queryAudit({ visibleTo: { user: 'carol', folders: ['pics'] } }).map((e) => e.action)).toEqual(['delete']);
    expect(store.queryAudit({ limit: 1 }).map((e) => e.action)).toEqual(['delete']);
    expect(store.queryAudit({ user: 'bob' })[1]).toMatchObject({ ok: false, error: 'FORBIDDEN' });
  });

  it('caches SHA-256 sums only for the stat they were computed for', () => {
    const key = { size: 10, mtimeMs: 1234.5, ino: 7 };
    store.putSha256('docs', 'a/b', key, 'f'.repeat(64));
    expect(store.cachedSha256('docs', 'a/b', key)).toBe('f'.repeat(64));
    expect(store.cachedSha256('docs', 'a/b', { ...key, mtimeMs: 1234.6 })).toBeUndefined();
    store.forgetSha256('docs', 'a');
    expect(store.cachedSha256('docs', 'a/b', key)).toBeUndefined();
  });
});
