-- The token status list (draft-ietf-oauth-status-list): which indices are handed
-- out to which client, and which are revoked. Times are Unix seconds; index ranges
-- are half-open, [start, end).

-- The grant's index in the status list, carried by every access token issued under
-- it; NULL for grants from before the status list (and whenever the core gives none).
ALTER TABLE grants ADD COLUMN status_idx INTEGER;

CREATE INDEX grants_status_idx ON grants (status_idx);

-- One row: the first index never handed out. Blocks are carved from it and it only
-- grows, so an index is never handed out twice, even after its block is purged.
CREATE TABLE status_allocator (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    next_idx INTEGER NOT NULL CHECK (next_idx >= 0)
) STRICT;

INSERT INTO status_allocator (id, next_idx) VALUES (1, 0);

-- Blocks of indices reserved by a node for the tokens of one client. No foreign key
-- to clients: what a block says must outlive the client, for as long as tokens
-- carrying its indices can be presented.
CREATE TABLE status_blocks (
    start       INTEGER NOT NULL PRIMARY KEY CHECK (start >= 0),
    size        INTEGER NOT NULL CHECK (size > 0),
    client_id   TEXT    NOT NULL,
    -- The last moment a token carrying one of its indices may expire.
    valid_until INTEGER NOT NULL,
    reserved_at INTEGER NOT NULL
) STRICT;

CREATE INDEX status_blocks_client_id ON status_blocks (client_id, valid_until);
CREATE INDEX status_blocks_valid_until ON status_blocks (valid_until);

-- Revoked ranges, in the order they were recorded. AUTOINCREMENT so that a seq is
-- never used again, even once the newest row has been deleted; all writes go
-- through one connection in one transaction at a time, so seq order is also commit
-- order and a reader polling "seq > last seen" misses nothing.
CREATE TABLE status_revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    start      INTEGER NOT NULL,
    end_idx    INTEGER NOT NULL,
    -- When every token that could carry one of the indices has expired.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    CHECK (start >= 0 AND end_idx > start)
) STRICT;

CREATE INDEX status_revocations_start ON status_revocations (start);
CREATE INDEX status_revocations_end_idx ON status_revocations (end_idx);
CREATE INDEX status_revocations_expires_at ON status_revocations (expires_at);
