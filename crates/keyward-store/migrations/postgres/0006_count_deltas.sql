-- The kept license counts (0004 per environment, 0005 per customer) become sums of rows: each
-- statement that adds or removes licenses appends a row of its change instead of updating the one
-- row of its environment. Two transactions writing licenses to one environment (two batches of
-- `keyward generate`, two nodes creating licenses) no longer wait for each other's commit on that
-- row. Every node folds the rows back into one per environment and customer every few seconds,
-- and `keyward generate` does after a bulk load (`SqlStore::fold_license_counts`).
ALTER TABLE license_counts DROP CONSTRAINT license_counts_pkey;
CREATE INDEX license_counts_of_environment ON license_counts (environment);
ALTER TABLE customer_license_counts DROP CONSTRAINT customer_license_counts_pkey;
CREATE INDEX customer_license_counts_of_customer ON customer_license_counts (customer_id, environment);

CREATE OR REPLACE FUNCTION license_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO license_counts (environment, n) SELECT environment, COUNT(*) FROM new_rows GROUP BY environment;
    ELSE
        INSERT INTO license_counts (environment, n) SELECT environment, -COUNT(*) FROM old_rows GROUP BY environment;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customer_license_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO customer_license_counts (customer_id, environment, n)
            SELECT customer_id, environment, COUNT(*) FROM new_rows WHERE customer_id IS NOT NULL
            GROUP BY customer_id, environment;
    ELSE
        INSERT INTO customer_license_counts (customer_id, environment, n)
            SELECT customer_id, environment, -COUNT(*) FROM old_rows WHERE customer_id IS NOT NULL
            GROUP BY customer_id, environment;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customer_license_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.customer_id IS NOT NULL THEN
        INSERT INTO customer_license_counts (customer_id, environment, n) VALUES (OLD.customer_id, OLD.environment, -1);
    END IF;
    IF NEW.customer_id IS NOT NULL THEN
        INSERT INTO customer_license_counts (customer_id, environment, n) VALUES (NEW.customer_id, NEW.environment, 1);
    END IF;
    RETURN NULL;
END $$;
