-- Each customer's number of licenses, kept by triggers: the total of a search that matches a few
-- customers (an email, a domain) is read here, not counted. Counting one customer's 100,000
-- licenses from licenses_of_customer_newest visits the table's pages once validations have
-- updated them (89.7 ms p95 in bench/run.sh at a million); SQLite counts them from that index alone.
CREATE TABLE customer_license_counts (
    customer_id TEXT COLLATE "C" NOT NULL,
    environment TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (customer_id, environment)
);
INSERT INTO customer_license_counts (customer_id, environment, n)
    SELECT customer_id, environment, COUNT(*) FROM licenses WHERE customer_id IS NOT NULL
    GROUP BY customer_id, environment;

-- Inserts and deletes, once a statement: a batch of 10,000 licenses for one customer is one update.
-- Rows are taken in key order, so two batches for the same customers lock them in the same order.
CREATE FUNCTION customer_license_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO customer_license_counts AS c (customer_id, environment, n)
            SELECT customer_id, environment, COUNT(*) FROM new_rows WHERE customer_id IS NOT NULL
            GROUP BY customer_id, environment ORDER BY customer_id, environment
            ON CONFLICT (customer_id, environment) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        UPDATE customer_license_counts c SET n = c.n - gone.n
            FROM (SELECT customer_id, environment, COUNT(*) AS n FROM old_rows WHERE customer_id IS NOT NULL
                  GROUP BY customer_id, environment) gone
            WHERE c.customer_id = gone.customer_id AND c.environment = gone.environment;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER customer_license_counts_insert AFTER INSERT ON licenses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_license_counts_change();
CREATE TRIGGER customer_license_counts_delete AFTER DELETE ON licenses
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_license_counts_change();

-- A license changes customer one at a time (assigned, unassigned, moved). Row by row, and only
-- when the customer changed: the validation counts' updates never set customer_id.
CREATE FUNCTION customer_license_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.customer_id IS NOT NULL THEN
        UPDATE customer_license_counts SET n = n - 1
            WHERE customer_id = OLD.customer_id AND environment = OLD.environment;
    END IF;
    IF NEW.customer_id IS NOT NULL THEN
        INSERT INTO customer_license_counts AS c (customer_id, environment, n)
            VALUES (NEW.customer_id, NEW.environment, 1)
            ON CONFLICT (customer_id, environment) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER customer_license_counts_move AFTER UPDATE OF customer_id, environment ON licenses FOR EACH ROW
    WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id OR OLD.environment IS DISTINCT FROM NEW.environment)
    EXECUTE FUNCTION customer_license_counts_move();
