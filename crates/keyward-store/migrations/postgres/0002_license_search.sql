-- License lists at a million licenses: substring search (`q`) through pg_trgm GIN indexes, and
-- indexes that walk each sort in order, tie-breaker included. Adds only; 0001's indexes stay.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a role with CREATE on the
-- database may install it. A managed PostgreSQL must offer it (all major ones do).
-- CREATE INDEX blocks writes to the table while it builds (reads go on): measured in
-- `tests/search_scale.rs`, about a minute at a million licenses.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The expressions are the ones the search compares, term for term: `lower(x) LIKE '%q%'`.
CREATE INDEX licenses_key_trgm ON licenses USING gin (lower(key) gin_trgm_ops);
CREATE INDEX customers_email_trgm ON customers USING gin (lower(email) gin_trgm_ops);
CREATE INDEX customers_name_trgm ON customers USING gin (lower(name) gin_trgm_ops);
CREATE INDEX products_name_trgm ON products USING gin (lower(name) gin_trgm_ops);

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
-- licenses of no customer in id order.
CREATE INDEX licenses_by_customer ON licenses (customer_id, id);
CREATE INDEX licenses_unassigned ON licenses (environment, id) WHERE customer_id IS NULL;

-- What 0001's single-column indexes served, the ones above serve: they go.
DROP INDEX licenses_of_product;
DROP INDEX licenses_of_customer;

-- Statistics for the new expressions now, not at autovacuum's next turn: the planner weighs a
-- trigram search by them.
ANALYZE licenses;
ANALYZE customers;
ANALYZE products;
