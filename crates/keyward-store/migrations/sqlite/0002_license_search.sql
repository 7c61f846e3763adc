-- License lists at a million licenses: substring search (`q`) through FTS5 trigram indexes, and
-- indexes that walk each sort in order, tie-breaker included. Adds only; 0001's indexes stay.
--
-- Keys and customers have a trigram index each, so renaming a product or changing a customer's
-- email rewrites one index row, never their licenses'. Text is stored lower-cased and matched
-- case-sensitively: the same ASCII-only folding as `lower(x) LIKE` (trigrams see every character).
-- A search is a phrase (`"…"`): in a trigram index, a substring of at least 3 characters.

CREATE VIRTUAL TABLE license_key_search USING fts5(
    key, license_id UNINDEXED, environment UNINDEXED, tokenize = 'trigram case_sensitive 1', columnsize = 0
);
INSERT INTO license_key_search (key, license_id, environment) SELECT lower(key), id, environment FROM licenses;

CREATE TRIGGER license_key_search_insert AFTER INSERT ON licenses BEGIN
    INSERT INTO license_key_search (key, license_id, environment) VALUES (lower(new.key), new.id, new.environment);
END;

-- A row is found through its own key; a key shorter than a trigram is looked for row by row.
CREATE TRIGGER license_key_search_delete AFTER DELETE ON licenses BEGIN
    DELETE FROM license_key_search WHERE rowid IN (
        SELECT rowid FROM license_key_search
        WHERE license_key_search MATCH '"' || replace(lower(old.key), '"', '""') || '"' AND license_id = old.id
    );
    DELETE FROM license_key_search WHERE length(old.key) < 3 AND license_id = old.id;
END;

-- Keys do not change today; should one, its index row follows.
CREATE TRIGGER license_key_search_update AFTER UPDATE OF key, environment ON licenses BEGIN
    DELETE FROM license_key_search WHERE rowid IN (
        SELECT rowid FROM license_key_search
        WHERE license_key_search MATCH '"' || replace(lower(old.key), '"', '""') || '"' AND license_id = old.id
    );
    DELETE FROM license_key_search WHERE length(old.key) < 3 AND license_id = old.id;
    INSERT INTO license_key_search (key, license_id, environment) VALUES (lower(new.key), new.id, new.environment);
END;

CREATE VIRTUAL TABLE customer_search USING fts5(
    email, name, customer_id UNINDEXED, environment UNINDEXED, tokenize = 'trigram case_sensitive 1', columnsize = 0
);
INSERT INTO customer_search (email, name, customer_id, environment)
    SELECT lower(email), lower(name), id, environment FROM customers;

CREATE TRIGGER customer_search_insert AFTER INSERT ON customers BEGIN
    INSERT INTO customer_search (email, name, customer_id, environment)
        VALUES (lower(new.email), lower(new.name), new.id, new.environment);
END;

CREATE TRIGGER customer_search_delete AFTER DELETE ON customers BEGIN
    DELETE FROM customer_search WHERE rowid IN (
        SELECT rowid FROM customer_search
        WHERE customer_search MATCH '{email} : "' || replace(lower(old.email), '"', '""') || '"'
            AND customer_id = old.id
    );
    DELETE FROM customer_search WHERE length(old.email) < 3 AND customer_id = old.id;
END;

CREATE TRIGGER customer_search_update AFTER UPDATE OF email, name, environment ON customers
WHEN old.email IS NOT new.email OR old.name IS NOT new.name OR old.environment IS NOT new.environment BEGIN
    DELETE FROM customer_search WHERE rowid IN (
        SELECT rowid FROM customer_search
        WHERE customer_search MATCH '{email} : "' || replace(lower(old.email), '"', '""') || '"'
            AND customer_id = old.id
    );
    DELETE FROM customer_search WHERE length(old.email) < 3 AND customer_id = old.id;
    INSERT INTO customer_search (email, name, customer_id, environment)
        VALUES (lower(new.email), lower(new.name), new.id, new.environment);
END;

-- Sorts. An expression here is the one the list orders by, term for term.
CREATE INDEX licenses_by_expiry ON licenses (environment, (COALESCE(expires_at, 9223372036854775807)), id);
CREATE INDEX licenses_by_limit ON licenses (
    environment, (CASE WHEN activation_limit < 0 THEN 9223372036854775807 ELSE activation_limit END), id
);
CREATE INDEX licenses_by_status ON licenses (
    environment,
    (CASE status WHEN 'available' THEN 0 WHEN 'assigned' THEN 1 WHEN 'active' THEN 2 WHEN 'inactive' THEN 3
        WHEN 'suspended' THEN 4 WHEN 'expired' THEN 5 ELSE 6 END),
    id
);
-- A product's licenses in id order: the product sort walks product by product.
CREATE INDEX licenses_by_product ON licenses (product_id, id);
-- Counts of a product's licenses, of a status or not, from the index alone.
CREATE INDEX licenses_of_product_by_status ON licenses (product_id, status, expires_at, environment);
-- A customer's licenses in id order (the customer sort walks customers by email), and the
-- licenses of no customer (`customer_id IS NULL`) in id order.
CREATE INDEX licenses_by_customer ON licenses (customer_id, id);

-- 0001's licenses_of_product is served by licenses_by_product: it goes. licenses_of_customer
-- stays: it is small (no customer is NULL), and counting a whole table walks its smallest index.
DROP INDEX licenses_of_product;
