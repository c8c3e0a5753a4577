-- patrol-sync schema for PostgreSQL, version 2: report projections, premises
-- search and fleet health, as in the SQLite store (stores/projections.py).
-- Projection rows are written with their record, in the same transaction; `live`
-- is 0 for tombstones. Partial indexes hold live rows only.

CREATE TABLE p_premises (
    id             text COLLATE "C" PRIMARY KEY,
    ward_id        text COLLATE "C" NOT NULL,
    live           integer NOT NULL,
    kind           text COLLATE "C",
    name           text,
    address        text,
    owner_name     text,
    name_folded    text,
    address_folded text,
    owner_folded   text,
    -- search by name, address or owner without case or diacritics: the folded
    -- words, weighted name > address > owner for ranking
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, coalesce(name_folded, '')), 'A') ||
        setweight(to_tsvector('simple'::regconfig, coalesce(address_folded, '')), 'B') ||
        setweight(to_tsvector('simple'::regconfig, coalesce(owner_folded, '')), 'C')
    ) STORED
);
CREATE INDEX p_premises_ward_kind ON p_premises (ward_id, kind) WHERE live = 1;
CREATE INDEX p_premises_search ON p_premises USING gin (search) WHERE live = 1;

CREATE TABLE p_checks (
    id          text COLLATE "C" PRIMARY KEY,
    ward_id     text COLLATE "C" NOT NULL,
    live        integer NOT NULL,
    premises_id text COLLATE "C",
    kind        text COLLATE "C",
    team_id     text COLLATE "C",
    officer     text COLLATE "C",
    day         text COLLATE "C",
    week        text COLLATE "C",
    month       text COLLATE "C"
);
CREATE INDEX p_checks_ward_day ON p_checks (ward_id, day, premises_id) WHERE live = 1;

CREATE TABLE p_violations (
    id          text COLLATE "C" PRIMARY KEY,
    ward_id     text COLLATE "C" NOT NULL,
    live        integer NOT NULL,
    check_id    text COLLATE "C",
    premises_id text COLLATE "C",
    category    text COLLATE "C",
    status      text COLLATE "C",
    fine_vnd    bigint,
    day         text COLLATE "C"
);
CREATE INDEX p_violations_ward_day ON p_violations (ward_id, day, category, status, fine_vnd) WHERE live = 1;
CREATE INDEX p_violations_check ON p_violations (check_id) WHERE live = 1;

CREATE TABLE p_tips (
    id      text COLLATE "C" PRIMARY KEY,
    ward_id text COLLATE "C" NOT NULL,
    live    integer NOT NULL,
    status  text COLLATE "C",
    day     text COLLATE "C"
);
CREATE INDEX p_tips_ward_day ON p_tips (ward_id, day, status) WHERE live = 1;

CREATE TABLE p_patrols (
    id      text COLLATE "C" PRIMARY KEY,
    ward_id text COLLATE "C" NOT NULL,
    live    integer NOT NULL,
    team_id text COLLATE "C",
    day     text COLLATE "C",
    hours   double precision
);
CREATE INDEX p_patrols_ward_day ON p_patrols (ward_id, day, hours) WHERE live = 1;

CREATE TABLE p_safety_groups (
    id      text COLLATE "C" PRIMARY KEY,
    ward_id text COLLATE "C" NOT NULL,
    live    integer NOT NULL,
    kind    text COLLATE "C",
    day     text COLLATE "C"
);
CREATE INDEX p_safety_groups_ward ON p_safety_groups (ward_id, kind, day) WHERE live = 1;

CREATE TABLE p_fire_points (
    id      text COLLATE "C" PRIMARY KEY,
    ward_id text COLLATE "C" NOT NULL,
    live    integer NOT NULL,
    day     text COLLATE "C"
);
CREATE INDEX p_fire_points_ward ON p_fire_points (ward_id, day) WHERE live = 1;

CREATE TABLE p_targets (
    id      text COLLATE "C" PRIMARY KEY,
    ward_id text COLLATE "C" NOT NULL,
    live    integer NOT NULL,
    metric  text COLLATE "C",
    period  text COLLATE "C",
    target  bigint
);
CREATE INDEX p_targets_ward ON p_targets (ward_id, period) WHERE live = 1;

-- Per device: what it last told us and when (PROTOCOL.md section 6d).
CREATE TABLE device_health (
    device_id       text COLLATE "C" PRIMARY KEY,
    last_push_at    text,
    last_pull_at    text,
    client          text,
    client_version  text,
    schema          integer,
    pending         bigint,
    clock_offset_ms bigint,
    rejected        bigint NOT NULL DEFAULT 0
);
