-- Users with the admin role may use the web console at /admin. Everyone
-- existing starts without it: an operator grants it (valet user update --admin).
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
