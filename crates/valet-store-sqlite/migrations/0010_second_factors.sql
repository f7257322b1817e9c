-- Second factors (issue 15): TOTP credentials, recovery codes, and clients that
-- require them.
--
-- `totp_credentials`: one per user. `sealed_secret` is the RFC 6238 secret
-- sealed (AES-256-GCM) under a key derived from the master key, bound to the
-- user. A credential is pending (`confirmed_at` NULL) until a code from the
-- app confirms it; meanwhile its recovery codes wait in `sealed_recovery_codes`
-- (sealed too), cleared at confirmation. `last_step` is the last time step a
-- code was accepted for: a code of that step or an earlier one is refused.
CREATE TABLE totp_credentials (
    user_id               TEXT    NOT NULL PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    sealed_secret         BLOB    NOT NULL,
    sealed_recovery_codes BLOB,
    confirmed_at          INTEGER,
    last_step             INTEGER,
    created_at            INTEGER NOT NULL
) STRICT;

-- `recovery_codes`: SHA-256 of each code (80 random bits, bound to the user),
-- usable once (`used_at`).
CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- Users of a client with `require_mfa` sign in with a second factor.
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0
    CHECK (require_mfa IN (0, 1));
