-- patrol-sync schema, version 4: the ward-day index of checks also carries the team,
-- the check kind and the week.
--
-- Grouping a whole city's checks by team, check kind or week read each check's row
-- from the table after the index (a random read per check: 1.6 s for 1,000,000
-- checks). With the three small integers in the index every checks report is
-- answered from an index alone, for the cost of a few bytes per entry: the index is
-- rewritten with each check anyway.

DROP INDEX p_checks_ward_day;
CREATE INDEX p_checks_ward_day ON p_checks (ward, day, premises, nv, team, kind, week) WHERE live = 1;
