-- Operations that cannot lose data (issue 13).
--
-- `meta`: one row per store-wide fact. `master_key_check` holds a value sealed
-- with the master key, so every command can tell a wrong master key before it
-- seals anything with it.
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- `valet user unlock`: login failures for the user from before this moment no
-- longer count towards a lock-out, on every node.
ALTER TABLE users ADD COLUMN unlocked_at BIGINT;
