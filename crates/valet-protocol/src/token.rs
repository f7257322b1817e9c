//! The token endpoint (RFC 6749 §3.2), introspection (RFC 7662) and revocation
//! (RFC 7009): requests parsed into typed values, and the responses.

use std::fmt;

use base64::Engine as _;
use serde::Serialize;

use crate::error::ErrorCode;
use crate::form::{Form, FormError};
use crate::pkce::is_code_verifier;
use crate::scope::Scope;

/// Grant types Valet knows by name. Registration accepts all of them; the token
/// endpoint dispatches on [`TokenRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    /// RFC 8628 §3.4: the device authorization grant.
    DeviceCode,
    /// RFC 8693 token exchange.
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => TOKEN_EXCHANGE,
        }
    }

    /// By its registered name; the device grant also by its short name
    /// `device_code` (what an operator types).
    pub fn parse(name: &str) -> Option<Self> {
        if name == "device_code" {
            return Some(Self::DeviceCode);
        }
        Self::ALL.into_iter().find(|grant| grant.as_str() == name)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// As its RFC 6749 name (`authorization_code`, ...), as in client metadata.
impl Serialize for GrantType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2
/// `token_endpoint_auth_method`; RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the form-encoded id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: it names itself and has no secret.
    None,
    /// A JWT signed with one of the client's registered keys (RFC 7523 §2.2,
    /// OIDC Core §9 `private_key_jwt`).
    PrivateKeyJwt,
    /// A JWT MACed (HS256/384/512) with the client's secret (RFC 7523 §2.2,
    /// OIDC Core §9 `client_secret_jwt`).
    ClientSecretJwt,
}

impl TokenEndpointAuthMethod {
    pub const ALL: [TokenEndpointAuthMethod; 5] = [
        TokenEndpointAuthMethod::ClientSecretBasic,
        TokenEndpointAuthMethod::ClientSecretPost,
        TokenEndpointAuthMethod::None,
        TokenEndpointAuthMethod::PrivateKeyJwt,
        TokenEndpointAuthMethod::ClientSecretJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::ClientSecretJwt => "client_secret_jwt",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == name)
    }
}

impl fmt::Display for TokenEndpointAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// As its RFC 7591 name, as in client metadata.
impl Serialize for TokenEndpointAuthMethod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A token request, by grant. Only the parameters each grant defines are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// RFC 6749 §4.4.2
    ClientCredentials {
        scope: Option<Scope>,
        /// RFC 8707 `resource` values, in request order.
        resources: Vec<String>,
    },
    /// RFC 6749 §4.1.3 with RFC 7636 §4.5
    AuthorizationCode {
        code: Sensitive,
        redirect_uri: Option<String>,
        code_verifier: Sensitive,
    },
    /// RFC 6749 §6
    RefreshToken {
        refresh_token: Sensitive,
        scope: Option<Scope>,
    },
    /// RFC 8628 §3.4
    DeviceCode { device_code: Sensitive },
    /// RFC 8693 §2.1
    TokenExchange(TokenExchangeRequest),
}

/// The grant type name of RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 §3: the token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token exchange request (RFC 8693 §2.1). Only Valet access tokens are
/// exchanged, for a Valet access token, so every token type is `access_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExchangeRequest {
    pub subject_token: Sensitive,
    /// The party acting for the subject (§2.1 `actor_token`), if any.
    pub actor_token: Option<Sensitive>,
    /// `audience` values (logical names), in request order.
    pub audiences: Vec<String>,
    /// RFC 8707 `resource` values, in request order.
    pub resources: Vec<String>,
    pub scope: Option<Scope>,
}

impl TokenExchangeRequest {
    fn from_form(form: &Form) -> Result<Self, RequestError> {
        let invalid = |text: &str| RequestError::new(ErrorCode::InvalidRequest, text);
        let subject_token = Sensitive::new(form.required("subject_token")?);
        // §2.1: the type is required with each token; Valet exchanges its own
        // access tokens only.
        let access_token_type = |name: &'static str| -> Result<(), RequestError> {
            match form.optional(name)? {
                Some(ACCESS_TOKEN_TYPE) => Ok(()),
                None => Err(invalid(&format!("missing required parameter {name}"))),
                Some(_) => Err(invalid(&format!(
                    "{name} must be {ACCESS_TOKEN_TYPE}: only Valet access tokens are exchanged"
                ))),
            }
        };
        access_token_type("subject_token_type")?;
        let actor_token = match form.optional("actor_token")? {
            Some(token) => {
                access_token_type("actor_token_type")?;
                Some(Sensitive::new(token))
            }
            None if form.optional("actor_token_type")?.is_some() => {
                return Err(invalid("actor_token_type given without actor_token"));
            }
            None => None,
        };
        match form.optional("requested_token_type")? {
            None | Some(ACCESS_TOKEN_TYPE) => {}
            Some(_) => {
                return Err(invalid(&format!(
                    "requested_token_type must be {ACCESS_TOKEN_TYPE}: Valet issues only access tokens by exchange"
                )));
            }
        }
        Ok(Self {
            subject_token,
            actor_token,
            audiences: form.all("audience").map(str::to_owned).collect(),
            resources: parse_resources(form)?,
            scope: parse_scope(form)?,
        })
    }
}

/// A token request that could not be parsed, with the RFC 6749 §5.2 code to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: ErrorCode,
    pub description: String,
}

impl RequestError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }
}

impl From<FormError> for RequestError {
    fn from(error: FormError) -> Self {
        Self::new(ErrorCode::InvalidRequest, error.description())
    }
}

impl TokenRequest {
    pub fn from_form(form: &Form) -> Result<Self, RequestError> {
        let grant_type = form.required("grant_type")?;
        match GrantType::parse(grant_type) {
            Some(GrantType::ClientCredentials) => Ok(Self::ClientCredentials {
                scope: parse_scope(form)?,
                resources: parse_resources(form)?,
            }),
            Some(GrantType::AuthorizationCode) => Ok(Self::AuthorizationCode {
                code: Sensitive::new(form.required("code")?),
                redirect_uri: form.optional("redirect_uri")?.map(str::to_owned),
                code_verifier: match form.optional("code_verifier")? {
                    Some(verifier) if is_code_verifier(verifier) => Sensitive::new(verifier),
                    Some(_) => {
                        return Err(RequestError::new(
                            ErrorCode::InvalidGrant,
                            "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)",
                        ));
                    }
                    None => {
                        return Err(RequestError::new(
                            ErrorCode::InvalidRequest,
                            "missing required parameter code_verifier (PKCE)",
                        ));
                    }
                },
            }),
            Some(GrantType::RefreshToken) => Ok(Self::RefreshToken {
                refresh_token: Sensitive::new(form.required("refresh_token")?),
                scope: parse_scope(form)?,
            }),
            // Only by its URN at the token endpoint (RFC 8628 §3.4).
            Some(GrantType::DeviceCode) if grant_type == GrantType::DeviceCode.as_str() => {
                Ok(Self::DeviceCode {
                    device_code: Sensitive::new(form.required("device_code")?),
                })
            }
            Some(GrantType::TokenExchange) => {
                Ok(Self::TokenExchange(TokenExchangeRequest::from_form(form)?))
            }
            Some(GrantType::DeviceCode) | None => Err(RequestError::new(
                ErrorCode::UnsupportedGrantType,
                "the grant_type is not supported by this server",
            )),
        }
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::DeviceCode { .. } => GrantType::DeviceCode,
            Self::TokenExchange(_) => GrantType::TokenExchange,
        }
    }
}

/// The optional `scope` parameter (RFC 6749 §3.3).
pub fn parse_scope(form: &Form) -> Result<Option<Scope>, RequestError> {
    form.optional("scope")?
        .map(|text| {
            Scope::parse(text).map_err(|_| {
                RequestError::new(
                    ErrorCode::InvalidScope,
                    "scope contains an invalid character",
                )
            })
        })
        .transpose()
}

/// RFC 8707 §2: each `resource` is an absolute URI without a fragment. Valet
/// additionally accepts the plain audience names an operator registered, so the
/// check here is only the fragment rule; matching happens against the client.
pub fn parse_resources(form: &Form) -> Result<Vec<String>, RequestError> {
    if form.all("resource").any(|resource| resource.contains('#')) {
        return Err(RequestError::new(
            ErrorCode::InvalidTarget,
            "resource must not contain a fragment",
        ));
    }
    Ok(form.all("resource").map(str::to_owned).collect())
}

/// A credential-like value (code, verifier, token) as received. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: &str) -> Self {
        Self(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A client secret as received. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// How the client presented itself (RFC 6749 §2.3), before anything is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// `client_secret_basic`: HTTP Basic with form-encoded id and secret (§2.3.1).
    Basic {
        client_id: String,
        secret: ClientSecret,
    },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post {
        client_id: String,
        secret: ClientSecret,
    },
    /// Auth method `none`: a public client names itself (§2.1).
    None { client_id: String },
    /// `private_key_jwt`: a JWT assertion (RFC 7523 §2.2). `client_id` is the
    /// body's, if sent; the assertion names the client in `iss` and `sub`.
    JwtBearer {
        client_id: Option<String>,
        assertion: Sensitive,
    },
    /// No client identification at all.
    Absent,
}

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why the client's credentials could not even be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthenticationError {
    /// The `Authorization` header is not a well-formed Basic credential.
    MalformedBasic,
    /// Two methods at once: RFC 6749 §2.3 forbids more than one per request.
    MultipleMethods,
    /// A body `client_id` that differs from the one in the header.
    Form(FormError),
    /// `client_assertion` without `client_assertion_type`, or the reverse.
    IncompleteAssertion,
    /// A `client_assertion_type` other than RFC 7523's JWT bearer.
    UnsupportedAssertionType,
}

impl ClientAuthentication {
    /// Reads the credentials from an optional `Authorization` header value and the
    /// form body.
    pub fn from_request(
        authorization: Option<&[u8]>,
        form: &Form,
    ) -> Result<Self, ClientAuthenticationError> {
        let body_id = form
            .optional("client_id")
            .map_err(ClientAuthenticationError::Form)?;
        let body_secret = form
            .optional("client_secret")
            .map_err(ClientAuthenticationError::Form)?;
        let assertion_type = form
            .optional("client_assertion_type")
            .map_err(ClientAuthenticationError::Form)?;
        let assertion = form
            .optional("client_assertion")
            .map_err(ClientAuthenticationError::Form)?;
        match (assertion_type, assertion) {
            (None, None) => {}
            (Some(JWT_BEARER_ASSERTION), Some(assertion)) => {
                // RFC 6749 §2.3: one method per request.
                if authorization.is_some() || body_secret.is_some() {
                    return Err(ClientAuthenticationError::MultipleMethods);
                }
                return Ok(Self::JwtBearer {
                    client_id: body_id.map(str::to_owned),
                    assertion: Sensitive::new(assertion),
                });
            }
            (Some(JWT_BEARER_ASSERTION) | None, _) => {
                return Err(ClientAuthenticationError::IncompleteAssertion);
            }
            (Some(_), _) => return Err(ClientAuthenticationError::UnsupportedAssertionType),
        }
        match authorization {
            Some(header) => {
                let (client_id, secret) = parse_basic(header)?;
                if body_secret.is_some() {
                    return Err(ClientAuthenticationError::MultipleMethods);
                }
                // A body client_id is allowed alongside Basic only if it agrees.
                if body_id.is_some_and(|id| id != client_id) {
                    return Err(ClientAuthenticationError::MultipleMethods);
                }
                Ok(Self::Basic {
                    client_id,
                    secret: ClientSecret::new(secret),
                })
            }
            None => Ok(match (body_id, body_secret) {
                (Some(id), Some(secret)) => Self::Post {
                    client_id: id.to_owned(),
                    secret: ClientSecret::new(secret.to_owned()),
                },
                (Some(id), None) => Self::None {
                    client_id: id.to_owned(),
                },
                (None, _) => Self::Absent,
            }),
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::None { client_id } => Some(client_id),
            Self::JwtBearer { client_id, .. } => client_id.as_deref(),
            Self::Absent => None,
        }
    }

    pub fn used_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }
}

/// RFC 7617 Basic credentials whose parts are form-urlencoded (RFC 6749 §2.3.1).
fn parse_basic(header: &[u8]) -> Result<(String, String), ClientAuthenticationError> {
    let malformed = ClientAuthenticationError::MalformedBasic;
    let text = std::str::from_utf8(header).map_err(|_| malformed.clone())?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or(malformed.clone())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed.clone())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed.clone())?;
    let (id, secret) = decoded.split_once(':').ok_or(malformed.clone())?;
    let id = form_decode(id);
    let secret = form_decode(secret);
    if id.is_empty() || secret.is_empty() {
        return Err(malformed);
    }
    Ok((id, secret))
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space). A
/// raw `&` or `=` is kept as it is: it cannot split a component here.
fn form_decode(component: &str) -> String {
    if !component.bytes().any(|b| b == b'+' || b == b'%') {
        return component.to_owned();
    }
    let spaced = component.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, Serialize, serde::Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: the type of the token issued by an exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl TokenResponse {
    /// The JSON body, the same members as the derived `Serialize` writes, in one
    /// buffer sized for it. Tokens are base64url, dots and underscores, so they
    /// are copied as they are rather than scanned byte by byte for escapes.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let strings = [
            Some(&self.access_token),
            Some(&self.token_type),
            self.scope.as_ref(),
            self.refresh_token.as_ref(),
            self.id_token.as_ref(),
            self.issued_token_type.as_ref(),
        ];
        let capacity = strings
            .into_iter()
            .flatten()
            .map(String::len)
            .sum::<usize>()
            + 128;
        let mut json = Vec::with_capacity(capacity);
        json.extend_from_slice(b"{\"access_token\":");
        push_json_string(&mut json, &self.access_token)?;
        json.extend_from_slice(b",\"token_type\":");
        push_json_string(&mut json, &self.token_type)?;
        json.extend_from_slice(b",\"expires_in\":");
        json.extend_from_slice(self.expires_in.to_string().as_bytes());
        for (name, value) in [
            ("scope", &self.scope),
            ("refresh_token", &self.refresh_token),
            ("id_token", &self.id_token),
            ("issued_token_type", &self.issued_token_type),
        ] {
            if let Some(value) = value {
                json.extend_from_slice(b",\"");
                json.extend_from_slice(name.as_bytes());
                json.extend_from_slice(b"\":");
                push_json_string(&mut json, value)?;
            }
        }
        json.push(b'}');
        Ok(json)
    }
}

/// Appends `value` as a JSON string (RFC 8259 §7): copied as it is when nothing
/// in it needs escaping, else escaped by serde_json.
fn push_json_string(json: &mut Vec<u8>, value: &str) -> Result<(), serde_json::Error> {
    // Without an early exit this compiles to a vectorized scan.
    let plain = value.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if !plain {
        return serde_json::to_writer(&mut *json, value);
    }
    json.push(b'"');
    json.extend_from_slice(value.as_bytes());
    json.push(b'"');
    Ok(())
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// An introspection request (RFC 7662 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionRequest {
    pub token: Sensitive,
    pub token_type_hint: Option<String>,
}

impl IntrospectionRequest {
    pub fn from_form(form: &Form) -> Result<Self, RequestError> {
        Ok(Self {
            token: Sensitive::new(form.required("token")?),
            token_type_hint: form.optional("token_type_hint")?.map(str::to_owned),
        })
    }
}

/// A revocation request (RFC 7009 §2.1). The hint is only a hint: Valet looks the
/// token up in every place it could be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    pub token: Sensitive,
    pub token_type_hint: Option<String>,
}

impl RevocationRequest {
    pub fn from_form(form: &Form) -> Result<Self, RequestError> {
        Ok(Self {
            token: Sensitive::new(form.required("token")?),
            token_type_hint: form.optional("token_type_hint")?.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        let raw = format!("{id}:{secret}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
        .into_bytes()
    }

    #[test]
    fn token_response_json_matches_the_derived_serialization() {
        let full = TokenResponse {
            access_token: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".into(),
            token_type: "Bearer".into(),
            expires_in: -3,
            scope: Some("openid read".into()),
            refresh_token: Some("vrt_abc-_9".into()),
            id_token: Some("a.b.c".into()),
            issued_token_type: Some(ACCESS_TOKEN_TYPE.into()),
        };
        let odd = TokenResponse {
            access_token: "quote\" backslash\\ newline\n tab\t é \u{1}".into(),
            token_type: "Bearer".into(),
            expires_in: i64::MAX,
            scope: None,
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        };
        for response in [full, odd] {
            let written = response.to_json().ok();
            assert!(written.is_some());
            assert_eq!(written, serde_json::to_vec(&response).ok());
            let parsed = written
                .as_deref()
                .and_then(|json| serde_json::from_slice::<TokenResponse>(json).ok());
            assert_eq!(
                parsed.map(|parsed| parsed.access_token),
                Some(response.access_token)
            );
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let form = Form::parse(b"");
        let auth = ClientAuthentication::from_request(Some(&basic("a%3Ab", "s+%2B")), &form);
        assert_eq!(
            auth,
            Ok(ClientAuthentication::Basic {
                client_id: "a:b".into(),
                secret: ClientSecret::new("s +".into()),
            })
        );
    }

    #[test]
    fn raw_ampersands_stay_in_the_secret() {
        let form = Form::parse(b"");
        let auth = ClientAuthentication::from_request(Some(&basic("id", "a&b=c")), &form);
        assert_eq!(
            auth.map(|a| matches!(a, ClientAuthentication::Basic { secret, .. } if secret.expose() == "a&b=c")),
            Ok(true)
        );
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let form = Form::parse(b"client_id=a&client_secret=b");
        let auth = ClientAuthentication::from_request(Some(&basic("a", "b")), &form);
        assert_eq!(auth, Err(ClientAuthenticationError::MultipleMethods));
    }

    #[test]
    fn malformed_basic_is_refused() {
        let form = Form::parse(b"");
        for header in [&b"Basic !!!"[..], b"Bearer abc", b"Basic", b"Basic YWJj"] {
            assert_eq!(
                ClientAuthentication::from_request(Some(header), &form),
                Err(ClientAuthenticationError::MalformedBasic)
            );
        }
    }

    #[test]
    fn unknown_and_unimplemented_grants_are_unsupported() {
        for body in [
            &b"grant_type=password"[..],
            b"grant_type=implicit",
            b"grant_type=urn:x",
        ] {
            let error = TokenRequest::from_form(&Form::parse(body)).err();
            assert_eq!(error.map(|e| e.code), Some(ErrorCode::UnsupportedGrantType));
        }
        let error = TokenRequest::from_form(&Form::parse(b"scope=a")).err();
        assert_eq!(error.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn resources_may_repeat_but_not_carry_fragments() {
        let form = Form::parse(b"grant_type=client_credentials&resource=a&resource=b");
        assert_eq!(
            TokenRequest::from_form(&form),
            Ok(TokenRequest::ClientCredentials {
                scope: None,
                resources: vec!["a".into(), "b".into()],
            })
        );
        let form = Form::parse(b"grant_type=client_credentials&resource=https%3A%2F%2Fa%23x");
        let error = TokenRequest::from_form(&form).err();
        assert_eq!(error.map(|e| e.code), Some(ErrorCode::InvalidTarget));
    }
}
