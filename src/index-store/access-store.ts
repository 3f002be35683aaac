/**
 * Remote access data in the node's index database (tables of migration 002): users and their
 * per-folder permissions, API tokens (stored as SHA-256 only), the audit log, and a cache of
 * whole-file SHA-256 sums keyed by stat. A separate connection to the same file as
 * SqliteIndexStore, so the CLI (`ferry user add`) and the running node share it, in WAL mode.
 * Passwords arrive here already hashed: this module never sees one in clear.
 */
import Database from 'better-sqlite3';
import { FerryError } from '../core/errors.js';
import { openDatabase } from './open-database.js';
import { SqliteIndexStore } from './sqlite-index-store.js';

export type FolderAccess = 'ro' | 'rw';

export interface UserRecord {
  readonly id: number;
  readonly name: string;
  readonly admin: boolean;
  readonly createdAt: string;
  /** Folder ID → access. */
  readonly folders: Record<string, FolderAccess>;
  readonly hasPassword: boolean;
}

export interface TokenRecord {
  readonly id: number;
  readonly user: string;
  readonly label: string;
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly lastUsedAt?: string;
}

export interface AuditEntry {
  readonly id: number;
  readonly at: string;
  readonly user: string;
  readonly action: string;
  readonly folder?: string;
  readonly path?: string;
  readonly address: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly detail?: Record<string, unknown>;
}

export interface AuditQuery {
  /** ISO time; entries at or after it. */
  readonly since?: string;
  readonly until?: string;
  readonly user?: string;
  /** Folder-qualified path prefix, `FOLDER` or `FOLDER/dir/file`. */
  readonly path?: string;
  /** Only entries of these folders, or by this user (a non-admin's view). */
  readonly visibleTo?: { user: string; folders: readonly string[] };
  readonly limit?: number;
}

export interface Sha256Key {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

type Row = Record<string, any>;

export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export class AccessStore {
  private constructor(private readonly db: Database.Database) {}

  static open(file: string): AccessStore {
    // The index store owns the migrations; opening it once brings the schema up to date.
    SqliteIndexStore.open(file).close();
    const db = openDatabase(file);
    db.pragma('foreign_keys = ON');
    return new AccessStore(db);
  }

  close(): void {
    this.db.close();
  }

  // ---- users ----------------------------------------------------------------------------

  addUser(name: string, passwordHash: string | undefined, folders: Record<string, FolderAccess>, admin = false): UserRecord {
    if (!USER_NAME.test(name)) {
      throw new FerryError('INVALID_CONFIG', `invalid user name ${JSON.stringify(name)}: use letters, digits, '.', '_', '@' or '-' (at most 64)`);
    }
    return this.db.transaction(() => {
      if (this.userRow(name)) throw new FerryError('ALREADY_EXISTS', `user ${name} already exists`);
      const id = this.db
        .prepare('INSERT INTO users (name, password_hash, admin, created_at) VALUES (?, ?, ?, ?)')
        .run(name, passwordHash ?? null, admin ? 1 : 0, new Date().toISOString()).lastInsertRowid as number;
      for (const [folder, access] of Object.entries(folders)) {
        this.db.prepare('INSERT INTO user_folders (user_id, folder_id, access) VALUES (?, ?, ?)').run(id, folder, access);
      }
      return this.getUser(name)!;
    })();
  }

  /** Adds or changes folder grants of an existing user. */
  grant(name: string, folders: Record<string, FolderAccess>): UserRecord {
    const row = this.requireUser(name);
    this.db.transaction(() => {
      for (const [folder, access] of Object.entries(folders)) {
        this.db.prepare('INSERT OR REPLACE INTO user_folders (user_id, folder_id, access) VALUES (?, ?, ?)').run(row.id, folder, access);
      }
    })();
    return this.getUser(name)!;
  }

  setPassword(name: string, passwordHash: string): void {
    const row = this.requireUser(name);
    this.db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, row.id);
  }

  removeUser(name: string): void {
    const changes = this.db.prepare('DELETE FROM users WHERE name = ?').run(name).changes;
    if (changes === 0) throw new FerryError('NOT_FOUND', `no user ${name}`);
  }

  getUser(name: string): UserRecord | undefined {
    const row = this.userRow(name);
    return row && this.toUser(row);
  }

  /** Whether any user exists (remote access is in use at all). */
  hasUsers(): boolean {
    return this.db.prepare('SELECT 1 FROM users LIMIT 1').get() !== undefined;
  }

  listUsers(): UserRecord[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY name').all() as Row[]).map((r) => this.toUser(r));
  }

  /** The stored password hash of a user (undefined: no such user or no password). */
  passwordHash(name: string): string | undefined {
    return this.userRow(name)?.password_hash ?? undefined;
  }

  // ---- tokens ---------------------------------------------------------------------------

  addToken(user: string, tokenHash: Buffer, label: string, expiresAt?: string): TokenRecord {
    const row = this.requireUser(user);
    const id = this.db
      .prepare('INSERT INTO api_tokens (user_id, token_hash, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(row.id, tokenHash, label, new Date().toISOString(), expiresAt ?? null).lastInsertRowid as number;
    return this.listTokens(user).find((t) => t.id === id)!;
  }

  /** The user a token hash belongs to, if the token exists and has not expired; notes its use. */
  userForToken(tokenHash: Buffer, now = new Date()): UserRecord | undefined {
    const r = this.db
      .prepare('SELECT t.id AS token_id, t.expires_at, t.last_used_at, u.* FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?')
      .get(tokenHash) as Row | undefined;
    if (!r) return undefined;
    if (r.expires_at && Date.parse(r.expires_at) <= now.getTime()) return undefined;
    // Record use at most once a minute, to keep reads from turning into writes.
    if (!r.last_used_at || now.getTime() - Date.parse(r.last_used_at) > 60_000) {
      this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now.toISOString(), r.token_id);
    }
    return this.toUser(r);
  }

  listTokens(user?: string): TokenRecord[] {
    const rows = this.db
      .prepare(
        `SELECT t.*, u.name AS user FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE (? IS NULL OR u.name = ?) ORDER BY t.id`,
      )
      .all(user ?? null, user ?? null) as Row[];
    return rows.map((r) => ({
      id: r.id,
      user: r.user,
      label: r.label,
      createdAt: r.created_at,
      ...(r.expires_at ? { expiresAt: r.expires_at } : {}),
      ...(r.last_used_at ? { lastUsedAt: r.last_used_at } : {}),
    }));
  }

  revokeToken(id: number): void {
    const changes = this.db.prepare('DELETE FROM api_tokens WHERE id = ?').run(id).changes;
    if (changes === 0) throw new FerryError('NOT_FOUND', `no token ${id}`);
  }

  revokeTokenHash(tokenHash: Buffer): void {
    this.db.prepare('DELETE FROM api_tokens WHERE token_hash = ?').run(tokenHash);
  }

  // ---- audit ----------------------------------------------------------------------------

  audit(entry: Omit<AuditEntry, 'id' | 'at' | 'ok'> & { ok?: boolean; at?: string }): void {
    this.db
      .prepare('INSERT INTO audit_log (at, user, action, folder, path, address, ok, error, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(
        entry.at ?? new Date().toISOString(),
        entry.user,
        entry.action,
        entry.folder ?? null,
        entry.path ?? null,
        entry.address,
        entry.ok === false ? 0 : 1,
        entry.error ?? null,
        entry.detail ? JSON.stringify(entry.detail) : null,
      );
  }

  queryAudit(q: AuditQuery = {}): AuditEntry[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (clause: string, ...values: unknown[]) => {
      where.push(clause);
      args.push(...values);
    };
    if (q.since) add('at >= ?', q.since);
    if (q.until) add('at < ?', q.until);
    if (q.user) add('user = ?', q.user);
    if (q.path) {
      const slash = q.path.indexOf('/');
      const folder = slash < 0 ? q.path : q.path.slice(0, slash);
      const inner = slash < 0 ? undefined : q.path.slice(slash + 1);
      where.push('folder = ?');
      args.push(folder);
      if (inner) {
        where.push("(path = ? OR substr(path, 1, ?) = ? || '/')");
        args.push(inner, inner.length + 1, inner);
      }
    }
    if (q.visibleTo) {
      const folders = q.visibleTo.folders;
      where.push(`(user = ? OR folder IN (${folders.map(() => '?').join(',') || "''"}))`);
      args.push(q.visibleTo.user, ...folders);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    args.push(q.limit ?? 1000);
    return (this.db.prepare(sql).all(...args) as Row[]).reverse().map((r) => ({
      id: r.id,
      at: r.at,
      user: r.user,
      action: r.action,
      ...(r.folder != null ? { folder: r.folder } : {}),
      ...(r.path != null ? { path: r.path } : {}),
      address: r.address,
      ok: r.ok === 1,
      ...(r.error != null ? { error: r.error } : {}),
      ...(r.detail != null ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
    }));
  }

  // ---- whole-file SHA-256 cache -------------------------------------------------------------

  cachedSha256(folder: string, path: string, key: Sha256Key): string | undefined {
    const r = this.db.prepare('SELECT * FROM file_sha256 WHERE folder = ? AND path = ?').get(folder, path) as Row | undefined;
    if (!r || r.size !== key.size || r.mtime_ms !== key.mtimeMs || r.ino !== key.ino) return undefined;
    return r.sha256;
  }

  putSha256(folder: string, path: string, key: Sha256Key, sha256: string): void {
    this.db
      .prepare('INSERT OR REPLACE INTO file_sha256 (folder, path, size, mtime_ms, ino, sha256) VALUES (?, ?, ?, ?, ?, ?)')
      .run(folder, path, key.size, key.mtimeMs, key.ino, sha256);
  }

  forgetSha256(folder: string, path: string): void {
    this.db.prepare("DELETE FROM file_sha256 WHERE folder = ? AND (path = ? OR substr(path, 1, ?) = ? || '/')").run(folder, path, path.length + 1, path);
  }

  // ---- helpers --------------------------------------------------------------------------

  private userRow(name: string): Row | undefined {
    return this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as Row | undefined;
  }

  private requireUser(name: string): Row {
    const row = this.userRow(name);
    if (!row) throw new FerryError('NOT_FOUND', `no user ${name}`);
    return row;
  }

  private toUser(r: Row): UserRecord {
    const folders: Record<string, FolderAccess> = {};
    for (const f of this.db.prepare('SELECT folder_id, access FROM user_folders WHERE user_id = ? ORDER BY folder_id').all(r.id) as Row[]) {
      folders[f.folder_id] = f.access;
    }
    return { id: r.id, name: r.name, admin: r.admin === 1, createdAt: r.created_at, folders, hasPassword: r.password_hash != null };
  }
}
