-- Generating a million licenses: the key trigram table merges its segments in runs of 16, not 4.
-- FTS5 writes a segment per insert statement and merged them eagerly, which was 40% of the time
-- to generate (8.7 → 7.3 s a 100,000 at 400,000 licenses); a search reads a few more segments,
-- well under a millisecond at a million keys.
INSERT INTO license_key_search (license_key_search, rank) VALUES ('automerge', 16);

-- Every lookup of a customer's licenses is served by licenses_by_customer (customer_id, id) or
-- licenses_of_customer_newest; this one only cost a write per license.
DROP INDEX licenses_of_customer;
