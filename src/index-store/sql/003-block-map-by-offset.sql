-- Ferry index database, schema version 3: the block map's per-file index also orders by
-- offset. "Is this block at this offset of this file?" (asked for every block served) was a
-- scan of all the file's blocks, quadratic over a large file; now it is one index lookup, and
-- the blocks of a byte range are one range scan.
DROP INDEX block_map_by_file;
CREATE INDEX block_map_by_file ON block_map (folder, path, offset);
