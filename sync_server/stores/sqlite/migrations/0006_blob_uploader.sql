-- patrol-sync schema, version 6: who uploaded each blob (PROTOCOL.md section 6b).
--
-- Blobs no record names count against their uploader's quota and are dropped 7 days
-- after their upload (`stored_at`). Blobs stored before this migration have no known
-- uploader (NULL): they count against nobody's quota, and still expire if unnamed.

ALTER TABLE blobs ADD COLUMN uploader TEXT;
CREATE INDEX blobs_uploader ON blobs (uploader) WHERE uploader IS NOT NULL;
CREATE INDEX blobs_stored_at ON blobs (stored_at);
