-- Validations answered from memory are appended here, in the order they were written, with no
-- index: a batch writes a few pages at the table's end. Every few seconds the store folds them
-- into the licenses' counts and the indexed history, sorted by license, and deletes them
-- (sql/journal.rs). Written into those directly, each validation dirtied a random page of
-- `licenses` and one of `validations_of_license`: at a million licenses, a third of the cost of
-- a validation. No foreign key: a license deleted meanwhile loses its rows at the fold.
-- A row keeps its seq when folded, so a page of history read before a fold goes on after it:
-- the store keeps this table's sequence past the history's (sql/journal.rs).
CREATE TABLE validation_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    license_id TEXT NOT NULL,
    validated_at BIGINT NOT NULL,
    code TEXT NOT NULL,
    fingerprint TEXT,
    ip TEXT
);
