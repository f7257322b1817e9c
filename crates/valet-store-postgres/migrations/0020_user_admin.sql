-- Users with the admin role may use the web console at /admin. Everyone
-- existing starts without it: an operator grants it (valet user update --admin).
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
