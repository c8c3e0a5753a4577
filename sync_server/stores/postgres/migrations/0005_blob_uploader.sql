-- patrol-sync schema for PostgreSQL, version 5: who uploaded each blob (PROTOCOL.md
-- section 6b), as in the SQLite store. Blobs no record names count against their
-- uploader's quota and are dropped 7 days after their upload (`stored_at`); blobs
-- stored before this migration have no known uploader (NULL): nobody's quota.

ALTER TABLE blobs ADD COLUMN uploader text COLLATE "C";
CREATE INDEX blobs_uploader ON blobs (uploader) WHERE uploader IS NOT NULL;
CREATE INDEX blobs_stored_at ON blobs (stored_at);
