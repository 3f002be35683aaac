-- Ferry index database, schema version 7: a peer can be paused (`ferry peer pause`): the node
-- neither dials it nor lets it connect until it is resumed.
ALTER TABLE peers ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
