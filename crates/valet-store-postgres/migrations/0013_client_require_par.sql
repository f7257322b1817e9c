-- RFC 9126 §6: a client whose authorization requests must be pushed to /par
-- first. Existing clients need not.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;
