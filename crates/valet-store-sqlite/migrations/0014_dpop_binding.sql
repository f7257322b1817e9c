-- DPoP (RFC 9449): the JWK thumbprint a refresh token is bound to (§5), and the
-- one an authorization code is bound to by `dpop_jkt` (§10). NULL: not bound.
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
-- RFC 9449 §5.2 `dpop_bound_access_tokens`: the client must use DPoP at /token.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0
    CHECK (dpop_bound_access_tokens IN (0, 1));
