-- patrol-sync schema, version 3: attachments (PROTOCOL.md section 6b).
--
-- The bytes live in the blob store (sync_server/blobs/), not here. Here: which blobs
-- the server holds, and which records name which blob (the present elements of their
-- `photos` sets, tombstoned records included), written with each record in the same
-- transaction. A caller may read a blob when a record of his wards names it; the
-- missing list is what records of his wards name and `blobs` lacks.

CREATE TABLE blobs (
    id        TEXT PRIMARY KEY,   -- sha256:<hex>
    size      INTEGER NOT NULL,
    stored_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE blob_refs (
    blob_id    TEXT NOT NULL,
    ward_id    TEXT NOT NULL,
    collection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    PRIMARY KEY (blob_id, ward_id, collection, record_id)  -- "does a record of these wards name it": seeks
) WITHOUT ROWID;
CREATE INDEX blob_refs_ward ON blob_refs (ward_id, blob_id);        -- the missing list, in id order
CREATE INDEX blob_refs_record ON blob_refs (collection, record_id);  -- a record's refs, rewritten with it
