-- Records reshaped (issue 14).
--
-- `token_endpoint_auth_methods`: how the client may authenticate at the token
-- endpoint (RFC 7591 §2 `token_endpoint_auth_method`), a JSON list of
-- `client_secret_basic`, `client_secret_post`, `none`. Existing clients keep
-- what they could do: a client without a secret is public (`none`), one with a
-- secret may send it either way.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_methods TEXT NOT NULL DEFAULT '[]';
UPDATE clients SET token_endpoint_auth_methods = CASE
    WHEN secret_hash IS NULL THEN '["none"]'
    ELSE '["client_secret_basic","client_secret_post"]'
END;

-- `single_use`: short-lived records used once (interactions now; PAR handles,
-- device codes, DPoP jti, upstream state, mail tokens later). `key` is a hash
-- of the handle, unique per `kind`; a consumed record keeps its key taken
-- until it expires and is purged, so a replay is recognised.
CREATE TABLE single_use (
    kind       TEXT    NOT NULL,
    key        BLOB    NOT NULL,
    -- The core's own JSON.
    payload    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed   INTEGER NOT NULL DEFAULT 0 CHECK (consumed IN (0, 1)),
    PRIMARY KEY (kind, key)
) STRICT;

CREATE INDEX single_use_expires_at ON single_use (expires_at);

-- Interactions move there, keyed by the SHA-256 of their id, which SQLite
-- cannot compute: sign-ins pending at the upgrade start over (they live
-- minutes).
DROP TABLE interactions;
