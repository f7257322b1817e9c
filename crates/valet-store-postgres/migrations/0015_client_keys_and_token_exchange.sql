-- A client's public keys for private_key_jwt and signed request objects: a JWK
-- Set document (`jwks`, JSON text) or where to fetch one (`jwks_uri`), at most
-- one of them. And the audiences it may exchange tokens into (RFC 8693; a JSON
-- array, empty: no token exchange). Existing clients have none of these.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN token_exchange_audiences TEXT NOT NULL DEFAULT '[]';
