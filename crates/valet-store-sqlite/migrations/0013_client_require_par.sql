-- RFC 9126 §6: a client whose authorization requests must be pushed to /par
-- first. Existing clients need not.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0
    CHECK (require_pushed_authorization_requests IN (0, 1));
