-- patrol-sync schema for PostgreSQL: the supervisors' console, as in the SQLite
-- store (sqlite/migrations/0007_console.sql): console passwords, server-side
-- sessions, failed sign-ins, and one list index per collection.

ALTER TABLE users ADD COLUMN password_hash text;

CREATE TABLE console_sessions (
    id_hash    text COLLATE "C" PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL REFERENCES users(id),
    csrf       text NOT NULL,
    created_at text NOT NULL,
    seen_at    double precision NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

CREATE TABLE console_failures (
    key text COLLATE "C" NOT NULL,
    at  double precision NOT NULL
);
CREATE INDEX console_failures_key ON console_failures (key, at);

CREATE INDEX p_checks_list ON p_checks (ward_id, (coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_violations_list ON p_violations (ward_id, (coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_tips_list ON p_tips (ward_id, (coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_patrols_list ON p_patrols (ward_id, (coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_premises_list ON p_premises (ward_id, (coalesce(name, '')), id) WHERE live = 1;
CREATE INDEX p_checks_list_all ON p_checks ((coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_violations_list_all ON p_violations ((coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_tips_list_all ON p_tips ((coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_patrols_list_all ON p_patrols ((coalesce(day, '')), id) WHERE live = 1;
CREATE INDEX p_premises_list_all ON p_premises ((coalesce(name, '')), id) WHERE live = 1;
