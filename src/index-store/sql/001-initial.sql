-- Ferry index database, schema version 1.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Configuration (written by the CLI, read by the running node).
CREATE TABLE folders (
  id                 TEXT PRIMARY KEY,
  path               TEXT NOT NULL,
  index_id           TEXT NOT NULL,
  versions_keep_days INTEGER NOT NULL DEFAULT 30,
  rescan_seconds     INTEGER NOT NULL DEFAULT 600,
  created_at         TEXT NOT NULL
);

CREATE TABLE peers (
  device_id  TEXT PRIMARY KEY,
  name       TEXT NOT NULL DEFAULT '',
  addresses  TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE folder_devices (
  folder_id TEXT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES peers(device_id) ON DELETE CASCADE,
  PRIMARY KEY (folder_id, device_id)
);

-- This node's records. st_* is the stat of the file when it was last scanned or written,
-- used to skip hashing unchanged files.
CREATE TABLE files (
  folder         TEXT NOT NULL,
  path           TEXT NOT NULL,
  type           TEXT NOT NULL,
  size           INTEGER NOT NULL,
  mtime_ms       REAL NOT NULL,
  mode           INTEGER NOT NULL,
  deleted        INTEGER NOT NULL,
  version        TEXT NOT NULL,
  modified_by    TEXT NOT NULL,
  sequence       INTEGER NOT NULL,
  blocks         BLOB NOT NULL,
  symlink_target TEXT,
  chunk_avg      INTEGER NOT NULL DEFAULT 0,
  st_size        INTEGER NOT NULL DEFAULT -1,
  st_mtime_ms    REAL NOT NULL DEFAULT 0,
  st_ctime_ms    REAL NOT NULL DEFAULT 0,
  st_ino         INTEGER NOT NULL DEFAULT 0,
  scanned_at_ms  REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (folder, path)
) WITHOUT ROWID;
CREATE UNIQUE INDEX files_by_sequence ON files (folder, sequence);

-- What each peer announced.
CREATE TABLE remote_files (
  folder         TEXT NOT NULL,
  device         TEXT NOT NULL,
  path           TEXT NOT NULL,
  type           TEXT NOT NULL,
  size           INTEGER NOT NULL,
  mtime_ms       REAL NOT NULL,
  mode           INTEGER NOT NULL,
  deleted        INTEGER NOT NULL,
  version        TEXT NOT NULL,
  modified_by    TEXT NOT NULL,
  sequence       INTEGER NOT NULL,
  blocks         BLOB NOT NULL,
  symlink_target TEXT,
  PRIMARY KEY (folder, path, device)
) WITHOUT ROWID;

CREATE TABLE remote_index (
  folder       TEXT NOT NULL,
  device       TEXT NOT NULL,
  index_id     TEXT NOT NULL,
  max_sequence INTEGER NOT NULL,
  PRIMARY KEY (folder, device)
);

-- Where each block of this node's current files lives, to reuse local data.
CREATE TABLE block_map (
  hash   BLOB NOT NULL,
  folder TEXT NOT NULL,
  path   TEXT NOT NULL,
  offset INTEGER NOT NULL,
  size   INTEGER NOT NULL
);
CREATE INDEX block_map_by_hash ON block_map (hash);
CREATE INDEX block_map_by_file ON block_map (folder, path);

-- Runtime status the running node publishes for `ferry status`.
CREATE TABLE runtime_status (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at REAL NOT NULL
);

-- Devices that tried to connect without being configured.
CREATE TABLE pending_devices (
  device_id  TEXT PRIMARY KEY,
  address    TEXT NOT NULL,
  last_seen  TEXT NOT NULL
);
