-- Browser flows: users, their sessions, pending authorization requests, remembered
-- consent, and grants with what descends from them (codes, refresh tokens, the jtis
-- of access tokens). Times are Unix seconds; lists are JSON arrays of strings (as
-- TEXT); identifiers use the "C" collation, as in 0001.
--
-- Deleting a user, a client or a grant cascades to what hangs off it. Before
-- deleting a user or a client, the store puts the recorded access tokens of their
-- unrevoked grants in revoked_tokens, so a cascade never leaves a token usable.

-- Existing clients keep today's behaviour: consent asked, strict rotation, RS256.
ALTER TABLE clients
    ADD COLUMN skip_consent                 BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN refresh_grace_seconds        BIGINT  NOT NULL DEFAULT 0,
    ADD COLUMN id_token_signed_response_alg TEXT;

CREATE TABLE users (
    user_id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- Unique and case-sensitive (bytewise).
    username       TEXT COLLATE "C" NOT NULL,
    -- Stored as given; unique case-insensitively (index below).
    email          TEXT COLLATE "C",
    email_verified BOOLEAN NOT NULL,
    name           TEXT,
    given_name     TEXT,
    family_name    TEXT,
    -- argon2id PHC string.
    password_hash  TEXT,
    disabled       BOOLEAN NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    CONSTRAINT users_username UNIQUE (username)
);

-- lower() under the column's "C" collation folds ASCII letters only, whatever the
-- database's locale, exactly as SQLite's lower() does: both backends agree on which
-- emails collide. Queries must compare with lower($1::text COLLATE "C").
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_created_at ON users (created_at, user_id);

CREATE TABLE sessions (
    -- SHA-256 of the cookie value.
    session_hash BYTEA  NOT NULL PRIMARY KEY,
    sid          TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    auth_time    BIGINT NOT NULL,
    amr          TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX sessions_sid ON sessions (sid);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE interactions (
    interaction_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- The core's own JSON.
    payload        TEXT   NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX interactions_expires_at ON interactions (expires_at);

CREATE TABLE consents (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scopes     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX consents_client_id ON consents (client_id);

CREATE TABLE grants (
    grant_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    scope      TEXT   NOT NULL,
    -- The session it was granted in; no foreign key: logout revokes grants by sid
    -- but a grant (offline access) may outlive its session row.
    sid        TEXT COLLATE "C",
    auth_time  BIGINT NOT NULL,
    amr        TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_sid ON grants (sid);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE authorization_codes (
    -- SHA-256 of the code.
    code_hash      BYTEA  NOT NULL PRIMARY KEY,
    grant_id       TEXT COLLATE "C" NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    client_id      TEXT COLLATE "C" NOT NULL,
    redirect_uri   TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    nonce          TEXT,
    scope          TEXT   NOT NULL,
    resources      TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    -- Set once; a consumed code is kept until it expires so a replay is recognised.
    consumed_at    BIGINT
);

CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token.
    token_hash       BYTEA  NOT NULL PRIMARY KEY,
    grant_id         TEXT COLLATE "C" NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    client_id        TEXT COLLATE "C" NOT NULL,
    scope            TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    -- The successor token response, sealed by the caller under the master key.
    sealed_successor BYTEA
);

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- The jtis of access tokens issued under a grant, so revoking the grant can put
-- them in revoked_tokens.
CREATE TABLE grant_access_tokens (
    grant_id   TEXT COLLATE "C" NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    jti        TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, jti)
);

CREATE INDEX grant_access_tokens_expires_at ON grant_access_tokens (expires_at);
