-- A customer's licenses by expiry (the list's expression, term for term): a search matching a
-- few customers, or a customer filter, sorted by expiry walks each customer's licenses along this
-- index, as newest first walks licenses_of_customer_newest. Without it, a customer whose 100,000
-- licenses sat at the far end of the environment's expiry order were all read and sorted: 0.25 s
-- p95 at a million licenses (bench/README.md).
CREATE INDEX licenses_of_customer_by_expiry ON licenses (
    customer_id, environment, (COALESCE(expires_at, 9223372036854775807)), id
);
