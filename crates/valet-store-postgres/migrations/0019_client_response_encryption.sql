-- Encrypted ID tokens and UserInfo answers (OIDC Registration §2, OIDC Core §10.2,
-- §5.3.2): the JWE alg and enc for each, and the UserInfo signing alg. NULL: none.
ALTER TABLE clients ADD COLUMN id_token_encrypted_response_alg TEXT;
ALTER TABLE clients ADD COLUMN id_token_encrypted_response_enc TEXT;
ALTER TABLE clients ADD COLUMN userinfo_signed_response_alg TEXT;
ALTER TABLE clients ADD COLUMN userinfo_encrypted_response_alg TEXT;
ALTER TABLE clients ADD COLUMN userinfo_encrypted_response_enc TEXT;
