-- patrol-sync schema, version 9: the edit log and blob references find a record by its
-- integer key (`p_keys.key`), not by its text id.
--
-- A key is handed out in rising order when an id is first seen, so the index entries of
-- a new record's edits and photo references go at the end of their index, whatever ids
-- the clients make. Indexed by text id, random ids (UUIDv4, hashes: the spec does not
-- forbid them) spread every change set over the whole index, and each page a change set
-- touches is written again (bench/README.md, issue 16).
-- The text columns stay: a key is shared by every collection's record of that id, so
-- a reader asks for (key, collection) and reads the id back.
--
-- Every record id is in p_keys already (each collection has report projections, which
-- intern it); the edit log's ids are interned again for safety. The blob references
-- are derived again after this script, with their keys (`_migrate._STEPS`).

INSERT OR IGNORE INTO p_keys (id) SELECT record_id FROM edits ORDER BY id;

DROP TRIGGER edits_append_only_update;
ALTER TABLE edits ADD COLUMN rk INTEGER NOT NULL DEFAULT 0;
UPDATE edits SET rk = (SELECT key FROM p_keys WHERE p_keys.id = edits.record_id);
CREATE TRIGGER edits_append_only_update BEFORE UPDATE ON edits
BEGIN
    SELECT RAISE(ABORT, 'the edit log is append-only');
END;
DROP INDEX edits_record;
CREATE INDEX edits_record ON edits (rk, id);

DROP INDEX blob_refs_record;
ALTER TABLE blob_refs ADD COLUMN rk INTEGER NOT NULL DEFAULT 0;
CREATE INDEX blob_refs_record ON blob_refs (rk);  -- a record's refs, rewritten with it
