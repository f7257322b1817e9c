-- Browser origins a client registered for CORS (a JSON array of serialized
-- origins, such as ["https://spa.example"]). Existing clients have none: a public
-- client's redirect URI origins are allowed without being listed.
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
