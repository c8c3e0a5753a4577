-- patrol-sync schema, version 2: report projections, premises search, fleet health.
-- Projection rows are written with their record, in the same transaction; `live`
-- is 0 for tombstones. Partial indexes hold live rows only.

CREATE TABLE p_premises (
    pk             INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    ward_id        TEXT NOT NULL,
    live           INTEGER NOT NULL,
    kind           TEXT,
    name           TEXT,
    address        TEXT,
    owner_name     TEXT,
    name_folded    TEXT,
    address_folded TEXT,
    owner_folded   TEXT
);
CREATE INDEX p_premises_ward_kind ON p_premises (ward_id, kind) WHERE live = 1;

-- Search by name, address or owner, without case or diacritics: the folded text
-- ("nha tro le loi") is what is indexed and what queries are folded to.
CREATE VIRTUAL TABLE premises_search USING fts5(
    name_folded, address_folded, owner_folded,
    content = 'p_premises', content_rowid = 'pk', tokenize = 'unicode61'
);
CREATE TRIGGER p_premises_search_insert AFTER INSERT ON p_premises BEGIN
    INSERT INTO premises_search (rowid, name_folded, address_folded, owner_folded)
    VALUES (new.pk, new.name_folded, new.address_folded, new.owner_folded);
END;
CREATE TRIGGER p_premises_search_update AFTER UPDATE ON p_premises BEGIN
    INSERT INTO premises_search (premises_search, rowid, name_folded, address_folded, owner_folded)
    VALUES ('delete', old.pk, old.name_folded, old.address_folded, old.owner_folded);
    INSERT INTO premises_search (rowid, name_folded, address_folded, owner_folded)
    VALUES (new.pk, new.name_folded, new.address_folded, new.owner_folded);
END;

CREATE TABLE p_checks (
    id          TEXT PRIMARY KEY,
    ward_id     TEXT NOT NULL,
    live        INTEGER NOT NULL,
    premises_id TEXT,
    kind        TEXT,
    team_id     TEXT,
    officer     TEXT,
    day         TEXT,
    week        TEXT,
    month       TEXT
) WITHOUT ROWID;
CREATE INDEX p_checks_ward_day ON p_checks (ward_id, day, premises_id) WHERE live = 1;

CREATE TABLE p_violations (
    id          TEXT PRIMARY KEY,
    ward_id     TEXT NOT NULL,
    live        INTEGER NOT NULL,
    check_id    TEXT,
    premises_id TEXT,
    category    TEXT,
    status      TEXT,
    fine_vnd    INTEGER,
    day         TEXT
) WITHOUT ROWID;
CREATE INDEX p_violations_ward_day ON p_violations (ward_id, day, category, status, fine_vnd) WHERE live = 1;
CREATE INDEX p_violations_check ON p_violations (check_id) WHERE live = 1;

CREATE TABLE p_tips (
    id      TEXT PRIMARY KEY,
    ward_id TEXT NOT NULL,
    live    INTEGER NOT NULL,
    status  TEXT,
    day     TEXT
) WITHOUT ROWID;
CREATE INDEX p_tips_ward_day ON p_tips (ward_id, day, status) WHERE live = 1;

CREATE TABLE p_patrols (
    id      TEXT PRIMARY KEY,
    ward_id TEXT NOT NULL,
    live    INTEGER NOT NULL,
    team_id TEXT,
    day     TEXT,
    hours   REAL
) WITHOUT ROWID;
CREATE INDEX p_patrols_ward_day ON p_patrols (ward_id, day, hours) WHERE live = 1;

CREATE TABLE p_safety_groups (
    id      TEXT PRIMARY KEY,
    ward_id TEXT NOT NULL,
    live    INTEGER NOT NULL,
    kind    TEXT,
    day     TEXT
) WITHOUT ROWID;
CREATE INDEX p_safety_groups_ward ON p_safety_groups (ward_id, kind, day) WHERE live = 1;

CREATE TABLE p_fire_points (
    id      TEXT PRIMARY KEY,
    ward_id TEXT NOT NULL,
    live    INTEGER NOT NULL,
    day     TEXT
) WITHOUT ROWID;
CREATE INDEX p_fire_points_ward ON p_fire_points (ward_id, day) WHERE live = 1;

CREATE TABLE p_targets (
    id      TEXT PRIMARY KEY,
    ward_id TEXT NOT NULL,
    live    INTEGER NOT NULL,
    metric  TEXT,
    period  TEXT,
    target  INTEGER
) WITHOUT ROWID;
CREATE INDEX p_targets_ward ON p_targets (ward_id, period) WHERE live = 1;

-- Per device: what it last told us and when (PROTOCOL.md section 6d).
CREATE TABLE device_health (
    device_id       TEXT PRIMARY KEY,
    last_push_at    TEXT,
    last_pull_at    TEXT,
    client          TEXT,
    client_version  TEXT,
    schema          INTEGER,
    pending         INTEGER,
    clock_offset_ms INTEGER,
    rejected        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
