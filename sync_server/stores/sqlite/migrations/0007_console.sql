-- patrol-sync schema: the supervisors' console (PROTOCOL.md section 9).
--
-- A console password per user (argon2id, NULL: cannot sign in), server-side sessions
-- (only a hash of the cookie is kept; several workers share them through this file),
-- failed sign-ins by user and by address (to slow and limit guessing across workers),
-- and two list indexes per collection so a record list walks rows in date (or name)
-- order instead of sorting them: one ward's (ward, date), several wards' (date alone,
-- the other wards' rows skipped as they come).

ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seen_at    REAL NOT NULL  -- Unix seconds of the last request (idle expiry)
) WITHOUT ROWID;
CREATE INDEX console_sessions_user ON console_sessions (user_id);

CREATE TABLE console_failures (
    key TEXT NOT NULL,  -- 'user:<id>' or 'addr:<client address>'
    at  REAL NOT NULL
);
CREATE INDEX console_failures_key ON console_failures (key, at);

CREATE INDEX p_checks_list ON p_checks (ward, coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_violations_list ON p_violations (ward, coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_tips_list ON p_tips (ward, coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_patrols_list ON p_patrols (ward, coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_premises_list ON p_premises (ward, coalesce(name, '')) WHERE live = 1;
CREATE INDEX p_checks_list_all ON p_checks (coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_violations_list_all ON p_violations (coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_tips_list_all ON p_tips (coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_patrols_list_all ON p_patrols (coalesce(day, 0)) WHERE live = 1;
CREATE INDEX p_premises_list_all ON p_premises (coalesce(name, '')) WHERE live = 1;
