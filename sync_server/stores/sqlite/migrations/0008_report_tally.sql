-- patrol-sync schema: report counters, so a city's all-time figures are a sum over
-- ward-days instead of a pass over every check (issue 14: the overview).
--
-- p_tally holds, per ward and local day (yyyymmdd; 0: no date), what the summary
-- report and the checks-per-day chart count, kept exact by triggers on the
-- projection tables in the same transaction as the write (a record changing day,
-- ward, category, status, fine or premises, or becoming a tombstone or live again,
-- moves its count from the old row to the new one; a projection row deleted takes
-- its count away). `fact`:
--   0  live checks                              (value 0)
--   1  live violations of category `value`      (amount: their fines)
--   2  live violations of status `value`
--   3  live checks of premises `value` (p_keys.key; -1: none), day always 0: the
--      premises checked at all (n > 0) are a count of rows, exact, not a sum
-- Enum codes as in the projection tables; -1 for none. Facts 1 and 2 have a row of
-- day -1 besides, all days together: a city's all-time figures read 12 rows a ward.

CREATE TABLE p_tally (
    ward   INTEGER NOT NULL,
    day    INTEGER NOT NULL,
    fact   INTEGER NOT NULL,
    value  INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (ward, fact, day, value)
) WITHOUT ROWID;

CREATE TRIGGER p_checks_tally_insert AFTER INSERT ON p_checks WHEN new.live = 1 BEGIN
    INSERT INTO p_tally VALUES (new.ward, coalesce(new.day, 0), 0, 0, 1, 0)
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO p_tally VALUES (new.ward, 0, 3, coalesce(new.premises, -1), 1, 0)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER p_checks_tally_update AFTER UPDATE OF live, ward, day, premises ON p_checks
WHEN old.live IS NOT new.live OR old.ward IS NOT new.ward OR old.day IS NOT new.day OR old.premises IS NOT new.premises BEGIN
    UPDATE p_tally SET n = n - 1
     WHERE old.live = 1 AND ward = old.ward AND day = coalesce(old.day, 0) AND fact = 0 AND value = 0;
    UPDATE p_tally SET n = n - 1
     WHERE old.live = 1 AND ward = old.ward AND day = 0 AND fact = 3 AND value = coalesce(old.premises, -1);
    INSERT INTO p_tally SELECT new.ward, coalesce(new.day, 0), 0, 0, 1, 0 WHERE new.live = 1
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO p_tally SELECT new.ward, 0, 3, coalesce(new.premises, -1), 1, 0 WHERE new.live = 1
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER p_violations_tally_insert AFTER INSERT ON p_violations WHEN new.live = 1 BEGIN
    INSERT INTO p_tally VALUES (new.ward, coalesce(new.day, 0), 1, coalesce(new.category, -1), 1, coalesce(new.fine, 0))
        ON CONFLICT DO UPDATE SET n = n + 1, amount = amount + excluded.amount;
    INSERT INTO p_tally VALUES (new.ward, coalesce(new.day, 0), 2, coalesce(new.status, -1), 1, 0)
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO p_tally VALUES (new.ward, -1, 1, coalesce(new.category, -1), 1, coalesce(new.fine, 0))
        ON CONFLICT DO UPDATE SET n = n + 1, amount = amount + excluded.amount;
    INSERT INTO p_tally VALUES (new.ward, -1, 2, coalesce(new.status, -1), 1, 0)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER p_violations_tally_update AFTER UPDATE OF live, ward, day, category, status, fine ON p_violations
WHEN old.live IS NOT new.live OR old.ward IS NOT new.ward OR old.day IS NOT new.day
  OR old.category IS NOT new.category OR old.status IS NOT new.status OR old.fine IS NOT new.fine BEGIN
    UPDATE p_tally SET n = n - 1, amount = amount - coalesce(old.fine, 0)
     WHERE old.live = 1 AND ward = old.ward AND day IN (coalesce(old.day, 0), -1) AND fact = 1 AND value = coalesce(old.category, -1);
    UPDATE p_tally SET n = n - 1
     WHERE old.live = 1 AND ward = old.ward AND day IN (coalesce(old.day, 0), -1) AND fact = 2 AND value = coalesce(old.status, -1);
    INSERT INTO p_tally SELECT new.ward, coalesce(new.day, 0), 1, coalesce(new.category, -1), 1, coalesce(new.fine, 0) WHERE new.live = 1
        ON CONFLICT DO UPDATE SET n = n + 1, amount = amount + excluded.amount;
    INSERT INTO p_tally SELECT new.ward, coalesce(new.day, 0), 2, coalesce(new.status, -1), 1, 0 WHERE new.live = 1
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO p_tally SELECT new.ward, -1, 1, coalesce(new.category, -1), 1, coalesce(new.fine, 0) WHERE new.live = 1
        ON CONFLICT DO UPDATE SET n = n + 1, amount = amount + excluded.amount;
    INSERT INTO p_tally SELECT new.ward, -1, 2, coalesce(new.status, -1), 1, 0 WHERE new.live = 1
        ON CONFLICT DO UPDATE SET n = n + 1;
END;

-- a projection row removed (a repair that projects again) takes its counts with it
CREATE TRIGGER p_checks_tally_delete AFTER DELETE ON p_checks WHEN old.live = 1 BEGIN
    UPDATE p_tally SET n = n - 1 WHERE ward = old.ward AND day = coalesce(old.day, 0) AND fact = 0 AND value = 0;
    UPDATE p_tally SET n = n - 1 WHERE ward = old.ward AND day = 0 AND fact = 3 AND value = coalesce(old.premises, -1);
END;

CREATE TRIGGER p_violations_tally_delete AFTER DELETE ON p_violations WHEN old.live = 1 BEGIN
    UPDATE p_tally SET n = n - 1, amount = amount - coalesce(old.fine, 0)
     WHERE ward = old.ward AND day IN (coalesce(old.day, 0), -1) AND fact = 1 AND value = coalesce(old.category, -1);
    UPDATE p_tally SET n = n - 1 WHERE ward = old.ward AND day IN (coalesce(old.day, 0), -1) AND fact = 2 AND value = coalesce(old.status, -1);
END;

-- the records written before this migration
INSERT INTO p_tally
SELECT ward, coalesce(day, 0), 0, 0, count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 2;
INSERT INTO p_tally
SELECT ward, 0, 3, coalesce(premises, -1), count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 4;
INSERT INTO p_tally
SELECT ward, coalesce(day, 0), 1, coalesce(category, -1), count(*), coalesce(sum(fine), 0) FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4;
INSERT INTO p_tally
SELECT ward, coalesce(day, 0), 2, coalesce(status, -1), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4;
INSERT INTO p_tally
SELECT ward, -1, 1, coalesce(category, -1), count(*), coalesce(sum(fine), 0) FROM p_violations WHERE live = 1 GROUP BY 1, 4;
INSERT INTO p_tally
SELECT ward, -1, 2, coalesce(status, -1), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 4;
