-- Key search at a million licenses. Through 0002's pg_trgm index on licenses, a search for the
-- start of a key (`q=BENCH-Z`, one key in 32) read 147,000 candidate rows, nearly every page of
-- the table, to count its 31,000 matches (~290 ms): a vendor's keys share their first characters,
-- so every key holds the search's first trigrams, and its last one recurs elsewhere in keys.
-- A key is now looked up two ways:
--   * starting with the search: a range of `license_keys_by_key`, an index of a narrow table of
--     the keys kept by triggers, counted from the index alone (that table is only inserted into
--     and deleted from, so its pages stay all-visible, where licenses' rows are rewritten by every
--     validation count);
--   * holding it after its first character: pg_trgm on substr(lower(key), 2), where the shared
--     start's first trigram is gone, so a search beginning with it has few candidates.
-- The same count: ~20 ms. A match is one or the other, and counted once. (The trigram index stays
-- on licenses: on the narrow table, generating 100,000 licenses took 16 s instead of 12.)
CREATE TABLE license_keys (
    license_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    -- lower(licenses.key), as searches compare it.
    key TEXT COLLATE "C" NOT NULL
);
INSERT INTO license_keys (license_id, environment, key) SELECT id, environment, lower(key) FROM licenses;
CREATE INDEX license_keys_by_key ON license_keys (environment, key);
CREATE INDEX licenses_key_rest_trgm ON licenses USING gin (substr(lower(key), 2) gin_trgm_ops);
DROP INDEX licenses_key_trgm;

CREATE FUNCTION license_keys_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO license_keys (license_id, environment, key) SELECT id, environment, lower(key) FROM new_rows;
    ELSE
        DELETE FROM license_keys k USING old_rows o WHERE k.license_id = o.id;
    END IF;
    RETURN NULL;
END $$;

-- Once a statement, not once a row, as the counts (0004).
CREATE TRIGGER license_keys_insert AFTER INSERT ON licenses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION license_keys_change();
CREATE TRIGGER license_keys_delete AFTER DELETE ON licenses
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION license_keys_change();

-- keyward never changes a key or moves a license; anything else that does is followed.
CREATE FUNCTION license_keys_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE license_keys SET environment = NEW.environment, key = lower(NEW.key) WHERE license_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER license_keys_move AFTER UPDATE OF key, environment ON licenses FOR EACH ROW
    WHEN (OLD.key IS DISTINCT FROM NEW.key OR OLD.environment IS DISTINCT FROM NEW.environment)
    EXECUTE FUNCTION license_keys_move();

ANALYZE license_keys;
ANALYZE licenses;
