-- patrol-sync schema for PostgreSQL: report counters, as in the SQLite store
-- (sqlite/migrations/0008_report_tally.sql), so a city's all-time figures are a sum
-- over ward-days instead of a pass over every check.
--
-- p_tally holds, per ward and local day ('': no date), what the summary report and
-- the checks-per-day chart count. `fact`:
--   'checks'    live checks                              (value '')
--   'category'  live violations of category `value`      (amount: their fines)
--   'status'    live violations of status `value`
--   'premises'  live checks of premises `value`, day always '': the premises
--               checked at all (n > 0) are a count of rows, exact, not a sum
-- ('' for a value that is not set.) 'category' and 'status' have a row of day 'all'
-- besides, all days together: a city's all-time figures read 12 rows a ward.
--
-- Many workers write at once here, and a counter row updated in place would make
-- every transaction touching a ward-day wait for the others (and deadlock when two
-- touch two ward-days in opposite orders). So the triggers only append signed
-- changes to p_tally_delta (statement-level, one insert per projection upsert,
-- aggregated); readers add the deltas to p_tally, and fold them into it now and
-- then (one folder at a time, under an advisory lock): both in one snapshot, so
-- the sum is exact whenever it is read.

CREATE TABLE p_tally (
    ward_id text COLLATE "C" NOT NULL,
    day     text COLLATE "C" NOT NULL,
    fact    text COLLATE "C" NOT NULL,
    value   text COLLATE "C" NOT NULL,
    n       bigint NOT NULL,
    amount  bigint NOT NULL,
    PRIMARY KEY (ward_id, fact, day, value)
);

CREATE TABLE p_tally_delta (
    ward_id text COLLATE "C" NOT NULL,
    day     text COLLATE "C" NOT NULL,
    fact    text COLLATE "C" NOT NULL,
    value   text COLLATE "C" NOT NULL,
    n       bigint NOT NULL,
    amount  bigint NOT NULL
);

CREATE FUNCTION p_checks_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO p_tally_delta
        SELECT ward_id, day, fact, value, sum(n), 0 FROM (
            SELECT ward_id, coalesce(day, '') AS day, 'checks' AS fact, '' AS value, 1 AS n FROM new_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, '', 'premises', coalesce(premises_id, ''), 1 FROM new_rows WHERE live = 1
        ) d GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO p_tally_delta
        SELECT ward_id, day, fact, value, sum(n), 0 FROM (
            SELECT ward_id, coalesce(day, '') AS day, 'checks' AS fact, '' AS value, -1 AS n FROM old_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, '', 'premises', coalesce(premises_id, ''), -1 FROM old_rows WHERE live = 1
        ) d GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO p_tally_delta
        SELECT ward_id, day, fact, value, sum(n), 0 FROM (
            SELECT ward_id, coalesce(day, '') AS day, 'checks' AS fact, '' AS value, 1 AS n FROM new_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, '', 'premises', coalesce(premises_id, ''), 1 FROM new_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, coalesce(day, ''), 'checks', '', -1 FROM old_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, '', 'premises', coalesce(premises_id, ''), -1 FROM old_rows WHERE live = 1
        ) d GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION p_violations_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- each violation counts on its day and on 'all'
    IF TG_OP = 'INSERT' THEN
        INSERT INTO p_tally_delta
        SELECT v.ward_id, d.day, v.fact, v.value, sum(v.n), sum(v.amount) FROM (
            SELECT ward_id, coalesce(day, '') AS day, 'category' AS fact, coalesce(category, '') AS value, 1 AS n, coalesce(fine_vnd, 0) AS amount
              FROM new_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, coalesce(day, ''), 'status', coalesce(status, ''), 1, 0 FROM new_rows WHERE live = 1
        ) v CROSS JOIN LATERAL (VALUES (v.day), ('all')) AS d(day)
        GROUP BY 1, 2, 3, 4 HAVING sum(v.n) <> 0 OR sum(v.amount) <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO p_tally_delta
        SELECT v.ward_id, d.day, v.fact, v.value, sum(v.n), sum(v.amount) FROM (
            SELECT ward_id, coalesce(day, '') AS day, 'category' AS fact, coalesce(category, '') AS value, -1 AS n, -coalesce(fine_vnd, 0) AS amount
              FROM old_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, coalesce(day, ''), 'status', coalesce(status, ''), -1, 0 FROM old_rows WHERE live = 1
        ) v CROSS JOIN LATERAL (VALUES (v.day), ('all')) AS d(day)
        GROUP BY 1, 2, 3, 4 HAVING sum(v.n) <> 0 OR sum(v.amount) <> 0;
    ELSE
        INSERT INTO p_tally_delta
        SELECT v.ward_id, d.day, v.fact, v.value, sum(v.n), sum(v.amount) FROM (
            SELECT ward_id, coalesce(day, '') AS day, 'category' AS fact, coalesce(category, '') AS value, 1 AS n, coalesce(fine_vnd, 0) AS amount
              FROM new_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, coalesce(day, ''), 'status', coalesce(status, ''), 1, 0 FROM new_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, coalesce(day, '') AS day, 'category' AS fact, coalesce(category, '') AS value, -1 AS n, -coalesce(fine_vnd, 0) AS amount
              FROM old_rows WHERE live = 1
            UNION ALL
            SELECT ward_id, coalesce(day, ''), 'status', coalesce(status, ''), -1, 0 FROM old_rows WHERE live = 1
        ) v CROSS JOIN LATERAL (VALUES (v.day), ('all')) AS d(day)
        GROUP BY 1, 2, 3, 4 HAVING sum(v.n) <> 0 OR sum(v.amount) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER p_checks_tally_insert AFTER INSERT ON p_checks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION p_checks_tally();
CREATE TRIGGER p_checks_tally_update AFTER UPDATE ON p_checks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION p_checks_tally();
CREATE TRIGGER p_violations_tally_insert AFTER INSERT ON p_violations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION p_violations_tally();
CREATE TRIGGER p_violations_tally_update AFTER UPDATE ON p_violations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION p_violations_tally();

-- a projection row removed (a repair that projects again) takes its counts with it
CREATE TRIGGER p_checks_tally_delete AFTER DELETE ON p_checks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION p_checks_tally();
CREATE TRIGGER p_violations_tally_delete AFTER DELETE ON p_violations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION p_violations_tally();

-- the records written before this migration
INSERT INTO p_tally
SELECT ward_id, coalesce(day, ''), 'checks', '', count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 2;
INSERT INTO p_tally
SELECT ward_id, '', 'premises', coalesce(premises_id, ''), count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 4;
INSERT INTO p_tally
SELECT ward_id, coalesce(day, ''), 'category', coalesce(category, ''), count(*), coalesce(sum(fine_vnd), 0)
  FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4;
INSERT INTO p_tally
SELECT ward_id, coalesce(day, ''), 'status', coalesce(status, ''), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4;
INSERT INTO p_tally
SELECT ward_id, 'all', 'category', coalesce(category, ''), count(*), coalesce(sum(fine_vnd), 0) FROM p_violations WHERE live = 1 GROUP BY 1, 4;
INSERT INTO p_tally
SELECT ward_id, 'all', 'status', coalesce(status, ''), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 4;
