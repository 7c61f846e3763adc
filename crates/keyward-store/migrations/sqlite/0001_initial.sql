-- keyward's first schema on SQLite. Times are unix microseconds (BIGINT), JSON is TEXT, booleans
-- are 0/1, ids are TEXT: the types sqlx's Any driver carries alike on both backends.

CREATE TABLE environments (
    name TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);

INSERT INTO environments (name, created_at) VALUES
    ('production', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)),
    ('staging', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));

CREATE TABLE settings (
    environment TEXT PRIMARY KEY NOT NULL REFERENCES environments (name),
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE products (
    id TEXT PRIMARY KEY NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_newest ON products (environment, created_at, id);

CREATE TABLE generators (
    id TEXT PRIMARY KEY NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    product_id TEXT NOT NULL REFERENCES products (id),
    name TEXT NOT NULL,
    key_format TEXT NOT NULL,
    activation_limit BIGINT NOT NULL,
    validity_days BIGINT,
    validity_basis TEXT,
    feature_flags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX generators_newest ON generators (environment, created_at, id);
CREATE INDEX generators_of_product ON generators (product_id);

CREATE TABLE customers (
    id TEXT PRIMARY KEY NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_email ON customers (environment, email);
CREATE INDEX customers_newest ON customers (environment, created_at, id);

CREATE TABLE licenses (
    id TEXT PRIMARY KEY NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    key TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    generator_id TEXT NOT NULL REFERENCES generators (id),
    customer_id TEXT REFERENCES customers (id),
    status TEXT NOT NULL,
    activation_limit BIGINT NOT NULL,
    activation_count BIGINT NOT NULL,
    expires_at BIGINT,
    validity_days BIGINT,
    validity_basis TEXT,
    feature_flags TEXT NOT NULL,
    metadata TEXT NOT NULL,
    suspension_reason TEXT,
    ever_activated BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    assigned_at BIGINT,
    first_activated_at BIGINT,
    last_validated_at BIGINT,
    validation_count BIGINT NOT NULL
);
CREATE UNIQUE INDEX licenses_key ON licenses (environment, key);
CREATE INDEX licenses_newest ON licenses (environment, created_at, id);
CREATE INDEX licenses_of_product ON licenses (product_id);
CREATE INDEX licenses_of_customer ON licenses (customer_id);
CREATE INDEX licenses_status_expiry ON licenses (environment, status, expires_at);

CREATE TABLE activations (
    id TEXT PRIMARY KEY NOT NULL,
    license_id TEXT NOT NULL REFERENCES licenses (id),
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    name TEXT,
    platform TEXT,
    hostname TEXT,
    ip TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX activations_device ON activations (license_id, kind, fingerprint);

CREATE TABLE validations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    license_id TEXT NOT NULL REFERENCES licenses (id),
    validated_at BIGINT NOT NULL,
    code TEXT NOT NULL,
    fingerprint TEXT,
    ip TEXT
);
CREATE INDEX validations_of_license ON validations (license_id, validated_at, seq);

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    environment TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    ip TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_newest ON audit_events (environment, seq);
CREATE INDEX audit_events_of_target ON audit_events (environment, target_id, seq);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    environment TEXT NOT NULL REFERENCES environments (name),
    status TEXT NOT NULL,
    public_key TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- At most one current key per environment, also when two nodes create the first one at once.
CREATE UNIQUE INDEX signing_keys_current ON signing_keys (environment) WHERE status = 'current';
