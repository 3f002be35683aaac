-- Ferry index database, schema version 6: a folder's mode (`ferry folder set --mode`):
-- 'send-receive' (the default), 'send-only' (changes from peers are not applied here) or
-- 'receive-only' (changes made here are not sent to peers).
ALTER TABLE folders ADD COLUMN mode TEXT NOT NULL DEFAULT 'send-receive';
