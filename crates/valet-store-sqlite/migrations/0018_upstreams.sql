-- Upstream providers users may sign in with ("Sign in with …"). `kind` is
-- 'oidc' (endpoints by discovery, identity from the ID token) or 'oauth2'
-- (endpoints given, identity from userinfo through the *_claim mapping).
-- `sealed_secret` is the client secret at the provider, sealed (AES-256-GCM
-- under a key derived from the master key, bound to the name). `metadata` is
-- the discovery document fetched when the provider was added.
CREATE TABLE upstreams (
    name                   TEXT    NOT NULL PRIMARY KEY,
    kind                   TEXT    NOT NULL CHECK (kind IN ('oidc', 'oauth2')),
    issuer                 TEXT,
    client_id              TEXT    NOT NULL,
    sealed_secret          BLOB    NOT NULL,
    scopes                 TEXT    NOT NULL,
    authorization_endpoint TEXT,
    token_endpoint         TEXT,
    userinfo_endpoint      TEXT,
    subject_claim          TEXT    NOT NULL,
    email_claim            TEXT    NOT NULL,
    name_claim             TEXT    NOT NULL,
    metadata               TEXT,
    created_at             INTEGER NOT NULL
) STRICT;

-- A local user's link to an identity at an upstream provider: the subject
-- signs in as that user. An identity links to one user only.
CREATE TABLE upstream_links (
    upstream  TEXT    NOT NULL REFERENCES upstreams (name) ON DELETE CASCADE,
    subject   TEXT    NOT NULL,
    user_id   TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (upstream, subject)
) STRICT;

CREATE INDEX upstream_links_user_id ON upstream_links (user_id, linked_at);
