-- patrol-sync schema, version 1: identity, records, edit log, conflicts, change sets.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE wards (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    ward_id    TEXT NOT NULL REFERENCES wards(id),
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
    created_at TEXT NOT NULL
);

CREATE TABLE user_teams (
    user_id TEXT NOT NULL REFERENCES users(id),
    team_id TEXT NOT NULL REFERENCES teams(id),
    PRIMARY KEY (user_id, team_id)
) WITHOUT ROWID;

CREATE TABLE user_wards (
    user_id TEXT NOT NULL REFERENCES users(id),
    ward_id TEXT NOT NULL REFERENCES wards(id),
    PRIMARY KEY (user_id, ward_id)
) WITHOUT ROWID;

CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- One row per record, as it now stands. `seq` is the rowid: a new version of a
-- record takes a new, higher seq, so a pull scans in commit order.
CREATE TABLE records (
    seq        INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    ward_id    TEXT NOT NULL,
    deleted    INTEGER NOT NULL,
    doc        BLOB NOT NULL,   -- the record as pulled (JSON)
    crdt       BLOB NOT NULL,   -- tombstone and set elements (JSON)
    UNIQUE (collection, id)
);
CREATE INDEX records_ward_seq ON records (ward_id, seq);

-- Append-only: every applied edit, for record history.
CREATE TABLE edits (
    id           INTEGER PRIMARY KEY,
    collection   TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    ward_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    at           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    changeset_id TEXT NOT NULL,
    diff         BLOB NOT NULL
);
CREATE INDEX edits_record ON edits (collection, record_id, id);
CREATE TRIGGER edits_append_only_update BEFORE UPDATE ON edits
BEGIN
    SELECT RAISE(ABORT, 'the edit log is append-only');
END;
CREATE TRIGGER edits_append_only_delete BEFORE DELETE ON edits
BEGIN
    SELECT RAISE(ABORT, 'the edit log is append-only');
END;

CREATE TABLE conflicts (
    id           INTEGER PRIMARY KEY,
    collection   TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    ward_id      TEXT NOT NULL,
    field        TEXT,
    kind         TEXT NOT NULL,
    winner       TEXT NOT NULL,
    server       BLOB NOT NULL,
    client       BLOB NOT NULL,
    device_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    changeset_id TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open',
    resolved_by  TEXT,
    resolved_at  TEXT,
    resolution   BLOB
);
CREATE INDEX conflicts_ward_status ON conflicts (ward_id, status, id);

-- Idempotency: the answer of every change set, by (device, change set id).
-- A rowid table: answers are appended, the small key index points at them.
CREATE TABLE changesets (
    id           INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL,
    changeset_id TEXT NOT NULL,
    body_hash    BLOB NOT NULL,
    response     BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (device_id, changeset_id)
);
