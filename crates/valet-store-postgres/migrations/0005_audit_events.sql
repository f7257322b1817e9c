-- The audit trail: security-relevant events (valet_core::audit), appended in
-- batches by each node and read by `valet audit`. `detail` is a JSON object.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    user_id TEXT,
    client_id TEXT,
    address TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_user ON audit_events (user_id, at) WHERE user_id IS NOT NULL;
CREATE INDEX audit_events_client ON audit_events (client_id, at) WHERE client_id IS NOT NULL;
CREATE INDEX audit_events_event ON audit_events (event, at);
