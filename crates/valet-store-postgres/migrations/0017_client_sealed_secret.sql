-- client_secret_jwt (RFC 7523 §2.2, OIDC Core §9): the client's secret sealed
-- (AES-256-GCM under a key derived from the master key, bound to the client
-- id), so an assertion MACed with it can be checked. NULL for every other client.
ALTER TABLE clients ADD COLUMN sealed_secret BYTEA;
