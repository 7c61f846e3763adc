-- A customer's licenses, newest first: a search that matches a customer with many licenses walks
-- each matching customer's along this index instead of the whole environment's newest-first
-- index (a big customer's licenses, made in one batch, may all sit far from either end of it),
-- and counts them from the index alone.
CREATE INDEX licenses_of_customer_newest ON licenses (customer_id, environment, created_at, id);
