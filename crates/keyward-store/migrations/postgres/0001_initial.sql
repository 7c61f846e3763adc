-- keyward's first schema on PostgreSQL. Times are unix microseconds (BIGINT), JSON is TEXT, booleans
-- are 0/1, ids are TEXT: the types sqlx's Any driver carries alike on both backends. Compared
-- and sorted text is COLLATE "C" (byte order), as on SQLite, so both backends list alike.

CREATE TABLE environments (
    name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);

INSERT INTO environments (name, created_at) VALUES
    ('production', CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS BIGINT)),
    ('staging', CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS BIGINT));

CREATE TABLE settings (
    environment TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES environments (name),
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    name TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE products (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    name TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_newest ON products (environment, created_at, id);

CREATE TABLE generators (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    product_id TEXT COLLATE "C" NOT NULL REFERENCES products (id),
    name TEXT COLLATE "C" NOT NULL,
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
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    name TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_email ON customers (environment, email);
CREATE INDEX customers_newest ON customers (environment, created_at, id);

CREATE TABLE licenses (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    key TEXT COLLATE "C" NOT NULL,
    product_id TEXT COLLATE "C" NOT NULL REFERENCES products (id),
    generator_id TEXT COLLATE "C" NOT NULL REFERENCES generators (id),
    customer_id TEXT COLLATE "C" REFERENCES customers (id),
    status TEXT COLLATE "C" NOT NULL,
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
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    license_id TEXT COLLATE "C" NOT NULL REFERENCES licenses (id),
    kind TEXT NOT NULL,
    fingerprint TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    platform TEXT,
    hostname TEXT,
    ip TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX activations_device ON activations (license_id, kind, fingerprint);

CREATE TABLE validations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment TEXT COLLATE "C" NOT NULL,
    license_id TEXT COLLATE "C" NOT NULL REFERENCES licenses (id),
    validated_at BIGINT NOT NULL,
    code TEXT NOT NULL,
    fingerprint TEXT COLLATE "C",
    ip TEXT
);
CREATE INDEX validations_of_license ON validations (license_id, validated_at, seq);

CREATE TABLE audit_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    environment TEXT COLLATE "C" NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT COLLATE "C" NOT NULL,
    before_json TEXT,
    after_json TEXT,
    ip TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_newest ON audit_events (environment, seq);
CREATE INDEX audit_events_of_target ON audit_events (environment, target_id, seq);

CREATE TABLE signing_keys (
    kid TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    environment TEXT COLLATE "C" NOT NULL REFERENCES environments (name),
    status TEXT COLLATE "C" NOT NULL,
    public_key TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- At most one current key per environment, also when two nodes create the first one at once.
CREATE UNIQUE INDEX signing_keys_current ON signing_keys (environment) WHERE status = 'current';
