-- The kept license counts (0004 per environment, 0005 per customer) are no longer updated in
-- place: each statement that adds or removes licenses appends a row of its change to a table of
-- changes, so two transactions writing licenses to one environment (two batches of `keyward
-- generate`, two nodes creating licenses) no longer wait for each other's commit on that
-- environment's row. A count is its row plus its changes; every node folds the changes into the
-- rows every few seconds (`SqlStore::fold_license_counts`). A node of the previous version reads
-- the rows alone: during a rolling upgrade its totals lag by a few seconds of changes, never fail.
CREATE TABLE license_count_changes (
    environment TEXT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX license_count_changes_of_environment ON license_count_changes (environment);

CREATE TABLE customer_license_count_changes (
    customer_id TEXT COLLATE "C" NOT NULL,
    environment TEXT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX customer_license_count_changes_of_customer ON customer_license_count_changes (customer_id, environment);

CREATE OR REPLACE FUNCTION license_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO license_count_changes (environment, n)
            SELECT environment, COUNT(*) FROM new_rows GROUP BY environment;
    ELSE
        INSERT INTO license_count_changes (environment, n)
            SELECT environment, -COUNT(*) FROM old_rows GROUP BY environment;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customer_license_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO customer_license_count_changes (customer_id, environment, n)
            SELECT customer_id, environment, COUNT(*) FROM new_rows WHERE customer_id IS NOT NULL
            GROUP BY customer_id, environment;
    ELSE
        INSERT INTO customer_license_count_changes (customer_id, environment, n)
            SELECT customer_id, environment, -COUNT(*) FROM old_rows WHERE customer_id IS NOT NULL
            GROUP BY customer_id, environment;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customer_license_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.customer_id IS NOT NULL THEN
        INSERT INTO customer_license_count_changes (customer_id, environment, n)
            VALUES (OLD.customer_id, OLD.environment, -1);
    END IF;
    IF NEW.customer_id IS NOT NULL THEN
        INSERT INTO customer_license_count_changes (customer_id, environment, n)
            VALUES (NEW.customer_id, NEW.environment, 1);
    END IF;
    RETURN NULL;
END $$;
