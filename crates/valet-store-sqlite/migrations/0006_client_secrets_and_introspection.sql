-- Client secret rotation with overlap, and the introspection permission.

-- SHA-256 of the secret a client had before its last rotation, accepted until
-- previous_secret_expires_at (Unix seconds); both NULL when there is none.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;

-- 1: the client may introspect any token, not only its own or those naming it in
-- their audience. Existing clients do not get it.
ALTER TABLE clients ADD COLUMN introspect_any INTEGER NOT NULL DEFAULT 0
    CHECK (introspect_any IN (0, 1));
