-- Each environment's number of licenses, kept by triggers as on PostgreSQL (its migration 0004):
-- the total of a list over a whole environment is read here. Counting a million licenses from
-- the smallest index took ~20 ms of every such page (`sort=expires_at`, bench/run.sh).
-- SQLite's triggers run once a row: a million inserts update this one row a million times, in
-- the page cache (about 2 s of generating a million).
CREATE TABLE license_counts (
    environment TEXT PRIMARY KEY NOT NULL,
    n BIGINT NOT NULL
);
INSERT INTO license_counts (environment, n) SELECT environment, COUNT(*) FROM licenses GROUP BY environment;

CREATE TRIGGER license_counts_insert AFTER INSERT ON licenses BEGIN
    INSERT OR IGNORE INTO license_counts (environment, n) VALUES (new.environment, 0);
    UPDATE license_counts SET n = n + 1 WHERE environment = new.environment;
END;

CREATE TRIGGER license_counts_delete AFTER DELETE ON licenses BEGIN
    UPDATE license_counts SET n = n - 1 WHERE environment = old.environment;
END;

-- Licenses do not change environment today; should one, its count follows.
CREATE TRIGGER license_counts_move AFTER UPDATE OF environment ON licenses
WHEN old.environment IS NOT new.environment BEGIN
    UPDATE license_counts SET n = n - 1 WHERE environment = old.environment;
    INSERT OR IGNORE INTO license_counts (environment, n) VALUES (new.environment, 0);
    UPDATE license_counts SET n = n + 1 WHERE environment = new.environment;
END;
