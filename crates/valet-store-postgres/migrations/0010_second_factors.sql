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
    user_id               TEXT COLLATE "C" NOT NULL PRIMARY KEY
                          REFERENCES users (user_id) ON DELETE CASCADE,
    sealed_secret         BYTEA  NOT NULL,
    sealed_recovery_codes BYTEA,
    confirmed_at          BIGINT,
    last_step             BIGINT,
    created_at            BIGINT NOT NULL
);

-- `recovery_codes`: SHA-256 of each code (80 random bits, bound to the user),
-- usable once (`used_at`).
CREATE TABLE recovery_codes (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash  BYTEA  NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Users of a client with `require_mfa` sign in with a second factor.
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
