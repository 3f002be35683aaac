-- Ferry index database, schema version 2: remote access (users, API tokens, audit log).

-- People and scripts that use the REST API. The password is an scrypt hash with its own salt
-- and parameters ("scrypt$N$r$p$salt$hash", base64url), or NULL for a token-only account.
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  password_hash TEXT,
  admin         INTEGER NOT NULL DEFAULT 0,
  created_at    TEXT NOT NULL
);

-- Per-folder permission: 'ro' (list, download, hash) or 'rw' (also upload, delete).
-- No foreign key to folders: removing a folder leaves the grant, which then matches nothing.
CREATE TABLE user_folders (
  user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  folder_id TEXT NOT NULL,
  access    TEXT NOT NULL CHECK (access IN ('ro', 'rw')),
  PRIMARY KEY (user_id, folder_id)
);

-- API tokens; only the SHA-256 of a token is stored (tokens are 256-bit random, so a fast
-- hash is enough). Logins create tokens too (label 'login').
CREATE TABLE api_tokens (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash   BLOB NOT NULL UNIQUE,
  label        TEXT NOT NULL DEFAULT '',
  created_at   TEXT NOT NULL,
  expires_at   TEXT,
  last_used_at TEXT
);

-- Who did what, where, from which address, when. `ok` = 0 for refused attempts (with `error`).
CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,
  user    TEXT NOT NULL,
  action  TEXT NOT NULL,
  folder  TEXT,
  path    TEXT,
  address TEXT NOT NULL DEFAULT '',
  ok      INTEGER NOT NULL DEFAULT 1,
  error   TEXT,
  detail  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Whole-file SHA-256 of local files, keyed by the stat it was computed for; a changed stat
-- makes the entry stale. Serves `ferry hash`, `ferry verify` and download verification.
CREATE TABLE file_sha256 (
  folder   TEXT NOT NULL,
  path     TEXT NOT NULL,
  size     INTEGER NOT NULL,
  mtime_ms REAL NOT NULL,
  ino      INTEGER NOT NULL,
  sha256   TEXT NOT NULL,
  PRIMARY KEY (folder, path)
);
