-- The token status list (draft-ietf-oauth-status-list): which indices are handed
-- out to which client, and which are revoked. Times are Unix seconds; index ranges
-- are half-open, [start, end); identifiers use the "C" collation, as in 0001.

-- The grant's index in the status list, carried by every access token issued under
-- it; NULL for grants from before the status list (and whenever the core gives none).
ALTER TABLE grants ADD COLUMN status_idx BIGINT;

CREATE INDEX grants_status_idx ON grants (status_idx);

-- One row: the first index never handed out. A reservation moves it forward under
-- the row lock (UPDATE ... RETURNING), so concurrent reservations on any number of
-- nodes get disjoint, contiguous blocks. It only grows, so an index is never handed
-- out twice, even after its block is purged.
CREATE TABLE status_allocator (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    next_idx BIGINT  NOT NULL CHECK (next_idx >= 0)
);

INSERT INTO status_allocator (id, next_idx) VALUES (1, 0);

-- Blocks of indices reserved by a node for the tokens of one client. No foreign key
-- to clients: what a block says must outlive the client, for as long as tokens
-- carrying its indices can be presented.
CREATE TABLE status_blocks (
    start       BIGINT NOT NULL PRIMARY KEY CHECK (start >= 0),
    size        BIGINT NOT NULL CHECK (size > 0),
    client_id   TEXT COLLATE "C" NOT NULL,
    -- The last moment a token carrying one of its indices may expire.
    valid_until BIGINT NOT NULL,
    reserved_at BIGINT NOT NULL
);

CREATE INDEX status_blocks_client_id ON status_blocks (client_id, valid_until);
CREATE INDEX status_blocks_valid_until ON status_blocks (valid_until);

-- Revoked ranges, in the order they were recorded. A sequence alone would not give
-- that order: two transactions can commit their values out of order, and a reader
-- polling "seq > last seen" in between would skip the lower one for good. So every
-- insert takes a transaction-level advisory lock on this table first (see
-- `lock_status_revocations` in the store) and draws its seq under it: seq order is
-- then commit order. That relies on each nextval() being the next value, hence
-- CACHE 1 (the default): never raise it.
CREATE TABLE status_revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    start      BIGINT NOT NULL,
    end_idx    BIGINT NOT NULL,
    -- When every token that could carry one of the indices has expired.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    CHECK (start >= 0 AND end_idx > start)
);

CREATE INDEX status_revocations_start ON status_revocations (start);
CREATE INDEX status_revocations_end_idx ON status_revocations (end_idx);
CREATE INDEX status_revocations_expires_at ON status_revocations (expires_at);
