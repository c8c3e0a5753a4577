-- patrol-sync schema for PostgreSQL, version 1: the tables of the SQLite store,
-- with the same meaning, plus what several workers writing at once need.
-- Identifiers are COLLATE "C": byte order, as SQLite sorts them.

CREATE TABLE meta (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO meta (key, value) VALUES
    ('epoch', substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)),
    ('xid_base', '0');

CREATE TABLE wards (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    timezone   text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE teams (
    id         text COLLATE "C" PRIMARY KEY,
    ward_id    text COLLATE "C" NOT NULL REFERENCES wards(id),
    name       text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE users (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
    created_at text NOT NULL
);

CREATE TABLE user_teams (
    user_id text COLLATE "C" NOT NULL REFERENCES users(id),
    team_id text COLLATE "C" NOT NULL REFERENCES teams(id),
    PRIMARY KEY (user_id, team_id)
);

CREATE TABLE user_wards (
    user_id text COLLATE "C" NOT NULL REFERENCES users(id),
    ward_id text COLLATE "C" NOT NULL REFERENCES wards(id),
    PRIMARY KEY (user_id, ward_id)
);

CREATE TABLE devices (
    device_id  text COLLATE "C" PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL REFERENCES users(id),
    token_hash text COLLATE "C" NOT NULL UNIQUE,
    created_at text NOT NULL,
    revoked_at text
);

-- Version numbers: `seq` (in the records, a newer version of a record always
-- has a higher one) and conflict ids, handed out in consecutive blocks.
CREATE SEQUENCE record_seq AS bigint;
CREATE SEQUENCE conflict_id AS bigint;

-- Reserve `n` > 0 consecutive numbers of a sequence; returns the first. nextval alone gives unique
-- numbers, not a block: the block is taken under a short session-level advisory
-- lock, never held past this call, so transactions do not wait for each other's
-- commits here.
CREATE FUNCTION reserve_block(seq regclass, n bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    first bigint;
BEGIN
    IF n <= 0 THEN
        RAISE EXCEPTION 'reserve_block needs n > 0, not %', n;
    END IF;
    PERFORM pg_advisory_lock(7326530, seq::oid::int);
    BEGIN
        first := nextval(seq);
        IF n > 1 THEN
            PERFORM setval(seq, first + n - 1);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(7326530, seq::oid::int);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(7326530, seq::oid::int);
    RETURN first;
END
$$;

-- One row per record, as it now stands. `pos` is its place in the pull order:
-- (the writing transaction's id + xid_base) << 20, plus the version's rank in
-- that transaction; see sync_server/stores/postgres/_cursor.py.
CREATE TABLE records (
    collection text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    ward_id    text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    pos        bigint NOT NULL UNIQUE,
    deleted    boolean NOT NULL,
    doc        bytea NOT NULL,  -- the record as pulled (JSON), kept byte for byte
    crdt       bytea NOT NULL,  -- tombstone and set elements (JSON)
    PRIMARY KEY (collection, id)
);
CREATE INDEX records_ward_pos ON records (ward_id, pos);

-- Append-only: every applied edit, for record history.
CREATE TABLE edits (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection   text COLLATE "C" NOT NULL,
    record_id    text COLLATE "C" NOT NULL,
    ward_id      text COLLATE "C" NOT NULL,
    seq          bigint NOT NULL,
    at           text NOT NULL,
    user_id      text COLLATE "C" NOT NULL,
    device_id    text COLLATE "C" NOT NULL,
    changeset_id text COLLATE "C" NOT NULL,
    diff         bytea NOT NULL
);
CREATE INDEX edits_record ON edits (collection, record_id, id);
CREATE FUNCTION edits_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the edit log is append-only';
END
$$;
CREATE TRIGGER edits_append_only BEFORE UPDATE OR DELETE ON edits
    FOR EACH ROW EXECUTE FUNCTION edits_append_only();
CREATE TRIGGER edits_append_only_truncate BEFORE TRUNCATE ON edits
    FOR EACH STATEMENT EXECUTE FUNCTION edits_append_only();

CREATE TABLE conflicts (
    id           bigint PRIMARY KEY,
    collection   text COLLATE "C" NOT NULL,
    record_id    text COLLATE "C" NOT NULL,
    ward_id      text COLLATE "C" NOT NULL,
    field        text COLLATE "C",
    kind         text NOT NULL,
    winner       text NOT NULL,
    server       bytea NOT NULL,
    client       bytea NOT NULL,
    device_id    text COLLATE "C" NOT NULL,
    user_id      text COLLATE "C" NOT NULL,
    changeset_id text COLLATE "C" NOT NULL,
    created_at   text NOT NULL,
    status       text NOT NULL DEFAULT 'open',
    resolved_by  text,
    resolved_at  text,
    resolution   bytea
);
CREATE INDEX conflicts_ward_status ON conflicts (ward_id, status, id);

-- Idempotency: the answer of every change set, by (device, change set id).
CREATE TABLE changesets (
    device_id    text COLLATE "C" NOT NULL,
    changeset_id text COLLATE "C" NOT NULL,
    body_hash    bytea NOT NULL,
    response     bytea NOT NULL,
    created_at   text NOT NULL,
    PRIMARY KEY (device_id, changeset_id)
);

-- Stored answers are large (a record per change) and written once: compress them
-- with lz4 where the server has it (several times cheaper than the default pglz).
DO $$
BEGIN
    ALTER TABLE changesets ALTER COLUMN response SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$$;
