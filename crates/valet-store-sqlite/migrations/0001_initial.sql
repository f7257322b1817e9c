-- Valet's SQLite schema. Times are Unix seconds; lists are JSON arrays of strings.

CREATE TABLE clients (
    client_id                 TEXT    NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL,
    -- SHA-256 of the client secret; NULL for a public client.
    secret_hash               BLOB,
    redirect_uris             TEXT    NOT NULL,
    post_logout_redirect_uris TEXT    NOT NULL,
    grant_types               TEXT    NOT NULL,
    scopes                    TEXT    NOT NULL,
    audiences                 TEXT    NOT NULL,
    access_token_ttl          INTEGER,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;

CREATE INDEX clients_created_at ON clients (created_at, client_id);

CREATE TABLE signing_keys (
    kid                TEXT    NOT NULL PRIMARY KEY,
    alg                TEXT    NOT NULL,
    generation         INTEGER NOT NULL,
    public_jwk         TEXT    NOT NULL,
    -- Sealed by the caller (AES-256-GCM under the master key).
    sealed_private_key BLOB    NOT NULL,
    created_at         INTEGER NOT NULL,
    activates_at       INTEGER,
    publish_until      INTEGER,
    -- Concurrent rotations agree on one winner per generation.
    UNIQUE (alg, generation)
) STRICT;

CREATE TABLE revoked_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
