-- Ferry index database, schema version 5: a folder can be paused (`ferry folder pause`): the
-- node neither scans, pulls nor offers it to peers until it is resumed.
ALTER TABLE folders ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
