-- patrol-sync schema, version 2: report projections, premises search, fleet health.
--
-- Projection rows are written with their record, in the same transaction. Every
-- column a report filters or groups on is an integer: ids (wards, records, teams,
-- officers) are interned in p_keys, enums are their declaration index, days are
-- yyyymmdd, weeks yyyyww (ISO), months yyyymm. Partial indexes hold live rows only,
-- and each grouping of checks has an index that yields its rows in group order, so
-- a report over a whole city streams instead of sorting. `live` is 0 for tombstones.

CREATE TABLE p_keys (
    key INTEGER PRIMARY KEY,
    id  TEXT NOT NULL UNIQUE
);

CREATE TABLE p_premises (
    rk             INTEGER PRIMARY KEY,  -- p_keys.key of the record id
    ward           INTEGER NOT NULL,
    live           INTEGER NOT NULL,
    kind           INTEGER,
    name           TEXT,
    address        TEXT,
    owner_name     TEXT,
    name_folded    TEXT,
    address_folded TEXT,
    owner_folded   TEXT
);
CREATE INDEX p_premises_ward_kind ON p_premises (ward, kind) WHERE live = 1;

-- Search by name, address or owner, without case or diacritics: the folded text
-- ("nha tro le loi") is what is indexed and what queries are folded to.
CREATE VIRTUAL TABLE premises_search USING fts5(
    name_folded, address_folded, owner_folded,
    content = 'p_premises', content_rowid = 'rk', tokenize = 'unicode61'
);
CREATE TRIGGER p_premises_search_insert AFTER INSERT ON p_premises BEGIN
    INSERT INTO premises_search (rowid, name_folded, address_folded, owner_folded)
    VALUES (new.rk, new.name_folded, new.address_folded, new.owner_folded);
END;
CREATE TRIGGER p_premises_search_update AFTER UPDATE ON p_premises BEGIN
    INSERT INTO premises_search (premises_search, rowid, name_folded, address_folded, owner_folded)
    VALUES ('delete', old.rk, old.name_folded, old.address_folded, old.owner_folded);
    INSERT INTO premises_search (rowid, name_folded, address_folded, owner_folded)
    VALUES (new.rk, new.name_folded, new.address_folded, new.owner_folded);
END;

CREATE TABLE p_checks (
    rk       INTEGER PRIMARY KEY,
    ward     INTEGER NOT NULL,
    live     INTEGER NOT NULL,
    premises INTEGER,
    kind     INTEGER,
    team     INTEGER,
    officer  INTEGER,
    day      INTEGER,
    week     INTEGER,
    month    INTEGER,
    nv       INTEGER NOT NULL DEFAULT 0  -- live violations recorded at this check: counted when the
                                         -- check is first written, then kept by the triggers below
);
CREATE INDEX p_checks_ward_day ON p_checks (ward, day, premises, nv) WHERE live = 1;
CREATE INDEX p_checks_premises ON p_checks (premises, ward, day, nv) WHERE live = 1;
CREATE INDEX p_checks_month ON p_checks (month, premises, ward, nv) WHERE live = 1;
CREATE INDEX p_checks_officer ON p_checks (officer, premises, ward, nv) WHERE live = 1;
-- (day, week, team and check-kind groupings sort the period's rows: an index each
-- would cost every check written more than it saves the rarer city-wide report)

CREATE TABLE p_violations (
    rk        INTEGER PRIMARY KEY,
    ward      INTEGER NOT NULL,
    live      INTEGER NOT NULL,
    check_key INTEGER,
    premises  INTEGER,
    category  INTEGER,
    status    INTEGER,
    fine      INTEGER,
    day       INTEGER
);
CREATE INDEX p_violations_ward_day ON p_violations (ward, day, category, status, fine) WHERE live = 1;
CREATE INDEX p_violations_grouped ON p_violations (category, status, ward, day, fine) WHERE live = 1;
CREATE INDEX p_violations_check ON p_violations (check_key) WHERE live = 1;

CREATE TRIGGER p_violations_count_insert AFTER INSERT ON p_violations WHEN new.live = 1 BEGIN
    UPDATE p_checks SET nv = nv + 1 WHERE rk = new.check_key;
END;
CREATE TRIGGER p_violations_count_update AFTER UPDATE OF live, check_key ON p_violations BEGIN
    UPDATE p_checks SET nv = nv - 1 WHERE old.live = 1 AND rk = old.check_key;
    UPDATE p_checks SET nv = nv + 1 WHERE new.live = 1 AND rk = new.check_key;
END;
CREATE TABLE p_tips (
    rk     INTEGER PRIMARY KEY,
    ward   INTEGER NOT NULL,
    live   INTEGER NOT NULL,
    status INTEGER,
    day    INTEGER
);
CREATE INDEX p_tips_ward_day ON p_tips (ward, day, status) WHERE live = 1;

CREATE TABLE p_patrols (
    rk    INTEGER PRIMARY KEY,
    ward  INTEGER NOT NULL,
    live  INTEGER NOT NULL,
    team  INTEGER,
    day   INTEGER,
    hours REAL
);
CREATE INDEX p_patrols_ward_day ON p_patrols (ward, day, hours) WHERE live = 1;

CREATE TABLE p_safety_groups (
    rk   INTEGER PRIMARY KEY,
    ward INTEGER NOT NULL,
    live INTEGER NOT NULL,
    kind TEXT,
    day  INTEGER
);
CREATE INDEX p_safety_groups_ward ON p_safety_groups (ward, kind, day) WHERE live = 1;

CREATE TABLE p_fire_points (
    rk   INTEGER PRIMARY KEY,
    ward INTEGER NOT NULL,
    live INTEGER NOT NULL,
    day  INTEGER
);
CREATE INDEX p_fire_points_ward ON p_fire_points (ward, day) WHERE live = 1;

CREATE TABLE p_targets (
    rk     INTEGER PRIMARY KEY,
    ward   INTEGER NOT NULL,
    live   INTEGER NOT NULL,
    id     TEXT NOT NULL,
    metric TEXT,
    period TEXT,
    target INTEGER
);
CREATE INDEX p_targets_ward ON p_targets (ward, period) WHERE live = 1;

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
