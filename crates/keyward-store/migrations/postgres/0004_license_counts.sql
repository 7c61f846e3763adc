-- Each environment's number of licenses, kept by triggers: the total of a list over a whole
-- environment is read here, not counted. Counting a million rows that validations keep updating
-- visits the table's pages until autovacuum has been by (~150 ms at a million licenses).
-- SQLite counts them from an index in a few milliseconds and needs none of this.
CREATE TABLE license_counts (
    environment TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO license_counts (environment, n) SELECT environment, COUNT(*) FROM licenses GROUP BY environment;

CREATE FUNCTION license_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO license_counts AS c (environment, n)
            SELECT environment, COUNT(*) FROM new_rows GROUP BY environment
            ON CONFLICT (environment) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        UPDATE license_counts c SET n = c.n - gone.n
            FROM (SELECT environment, COUNT(*) AS n FROM old_rows GROUP BY environment) gone
            WHERE c.environment = gone.environment;
    END IF;
    RETURN NULL;
END $$;

-- Once a statement, not once a row: a bulk insert of 10,000 licenses updates its count once.
CREATE TRIGGER license_counts_insert AFTER INSERT ON licenses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION license_counts_change();
CREATE TRIGGER license_counts_delete AFTER DELETE ON licenses
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION license_counts_change();
