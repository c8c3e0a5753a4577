-- patrol-sync schema, version 4: the identity lifecycle (PROTOCOL.md sections 2 and 7).
--
-- A disabled user keeps his devices and data; his tokens answer 401 while
-- `disabled_at` is set. Enrolment codes are kept as their SHA-256 only, each used
-- once (`used_at`), and valid until `expires_at` (RFC 3339 UTC, compared as text).

ALTER TABLE users ADD COLUMN disabled_at text;

CREATE TABLE enrolments (
    code_hash  text COLLATE "C" PRIMARY KEY,
    device_id  text COLLATE "C" NOT NULL REFERENCES devices(device_id),
    created_at text NOT NULL,
    expires_at text NOT NULL,
    used_at    text
);
CREATE INDEX enrolments_device ON enrolments (device_id);
