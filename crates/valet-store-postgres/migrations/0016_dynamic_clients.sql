-- Dynamic client registration (RFC 7591, RFC 7592) and Client ID Metadata Documents.

-- SHA-256 of the registration access token of a client that registered itself;
-- NULL for clients an operator created.
ALTER TABLE clients ADD COLUMN registration_token_hash BYTEA;
-- For a client whose id is the URL of its metadata document: until when the
-- stored copy of the document may be used (Unix seconds); NULL for any other.
ALTER TABLE clients ADD COLUMN metadata_expires_at BIGINT;

-- Initial access tokens (RFC 7591 §3) that operators issue for registration.
CREATE TABLE initial_access_tokens (
    token_id   TEXT    NOT NULL PRIMARY KEY,
    token_hash BYTEA   NOT NULL UNIQUE,
    note       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    -- NULL: any number of registrations until it expires.
    uses_left  BIGINT  CHECK (uses_left >= 0)
);

CREATE INDEX initial_access_tokens_expires_at ON initial_access_tokens (expires_at);
