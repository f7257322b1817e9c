-- Passkeys (WebAuthn credentials) a user registered, for passwordless sign-in
-- and as a second factor. `credential_id` is the authenticator's id for the
-- credential (unique across users: WebAuthn §7.1 step 22); `user_handle` the
-- WebAuthn user id the authenticator returns with a discoverable credential;
-- `passkey` the credential as webauthn-rs serialises it (public key, counter,
-- backup flags), JSON. `sign_count`, `backup_eligible` and `backed_up` repeat
-- what the serialised credential says, for listing and audit.
CREATE TABLE passkeys (
    credential_id   BLOB    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    user_handle     TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    passkey         TEXT    NOT NULL,
    sign_count      INTEGER NOT NULL,
    backup_eligible INTEGER NOT NULL CHECK (backup_eligible IN (0, 1)),
    backed_up       INTEGER NOT NULL CHECK (backed_up IN (0, 1)),
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
) STRICT;

CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);
