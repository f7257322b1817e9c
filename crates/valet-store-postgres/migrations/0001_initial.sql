-- Valet's PostgreSQL schema. Times are Unix seconds; lists are JSON arrays of strings
-- (as TEXT). Identifiers use the "C" collation so that ordering is bytewise, as on
-- SQLite, whatever the database's locale.

CREATE TABLE clients (
    client_id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name                      TEXT   NOT NULL,
    -- SHA-256 of the client secret; NULL for a public client.
    secret_hash               BYTEA,
    redirect_uris             TEXT   NOT NULL,
    post_logout_redirect_uris TEXT   NOT NULL,
    grant_types               TEXT   NOT NULL,
    scopes                    TEXT   NOT NULL,
    audiences                 TEXT   NOT NULL,
    access_token_ttl          BIGINT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);

CREATE INDEX clients_created_at ON clients (created_at, client_id);

CREATE TABLE signing_keys (
    kid                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    alg                TEXT COLLATE "C" NOT NULL,
    generation         BIGINT NOT NULL,
    public_jwk         TEXT   NOT NULL,
    -- Sealed by the caller (AES-256-GCM under the master key).
    sealed_private_key BYTEA  NOT NULL,
    created_at         BIGINT NOT NULL,
    activates_at       BIGINT,
    publish_until      BIGINT,
    -- Concurrent rotations on several nodes agree on one winner per generation.
    CONSTRAINT signing_keys_alg_generation UNIQUE (alg, generation)
);

CREATE TABLE revoked_tokens (
    jti        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
