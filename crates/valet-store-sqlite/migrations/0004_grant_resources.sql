-- RFC 8707: the resources a grant was authorized for, so every access token of
-- the grant (refreshes included) keeps the same audience. JSON array of strings.
ALTER TABLE grants ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
