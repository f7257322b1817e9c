-- Records reshaped (issue 14).
--
-- `token_endpoint_auth_methods`: how the client may authenticate at the token
-- endpoint (RFC 7591 §2 `token_endpoint_auth_method`), a JSON list of
-- `client_secret_basic`, `client_secret_post`, `none`. Existing clients keep
-- what they could do: a client without a secret is public (`none`), one with a
-- secret may send it either way.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_methods TEXT NOT NULL DEFAULT '[]';
UPDATE clients SET token_endpoint_auth_methods = CASE
    WHEN secret_hash IS NULL THEN '["none"]'
    ELSE '["client_secret_basic","client_secret_post"]'
END;
