-- patrol-sync schema for PostgreSQL, version 3: attachments (PROTOCOL.md section 6b),
-- as in the SQLite store. The bytes live in the blob store (sync_server/blobs/);
-- here, which blobs the server holds and which records name which blob (present
-- elements of `photos` sets, tombstoned records included), written with each record.

CREATE TABLE blobs (
    id        text COLLATE "C" PRIMARY KEY,  -- sha256:<hex>
    size      bigint NOT NULL,
    stored_at text NOT NULL
);

CREATE TABLE blob_refs (
    blob_id    text COLLATE "C" NOT NULL,
    ward_id    text COLLATE "C" NOT NULL,
    collection text COLLATE "C" NOT NULL,
    record_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (blob_id, ward_id, collection, record_id)
);
CREATE INDEX blob_refs_ward ON blob_refs (ward_id, blob_id);
CREATE INDEX blob_refs_record ON blob_refs (collection, record_id);
