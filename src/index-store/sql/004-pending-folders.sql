-- Ferry index database, schema version 4: folders that connected peers offer but that are not
-- shared with them here, so `ferry status` can list them and `ferry folder accept` take them.
-- A declined offer is kept (declined = 1) so that it is not listed again at the next connection.
CREATE TABLE pending_folders (
  folder_id  TEXT NOT NULL,
  device_id  TEXT NOT NULL,
  last_seen  TEXT NOT NULL,
  declined   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (folder_id, device_id)
);
