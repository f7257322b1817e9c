//! The authorization endpoint's request (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID
//! Connect Core §3.1.2.1), read from the query (GET) or the form (POST).

use crate::error::ErrorCode;
use crate::form::{Form, FormError};
use crate::pkce::is_s256_challenge;
use crate::scope::Scope;
use crate::token::{RequestError, parse_resources, parse_scope};

/// `response_mode` (OAuth 2.0 Multiple Response Type Encoding Practices, Form Post
/// Response Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// The parts that must be trusted before anything may be redirected: until both
/// are checked, every error is shown to the user, never sent to `redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAndRedirect {
    pub client_id: String,
    pub redirect_uri: Option<String>,
}

impl ClientAndRedirect {
    pub fn from_form(form: &Form) -> Result<Self, FormError> {
        Ok(Self {
            client_id: form.required("client_id")?.to_owned(),
            redirect_uri: form.optional("redirect_uri")?.map(str::to_owned),
        })
    }
}

/// `prompt` (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// The rest of the request, parsed once the redirect URI is trusted. Errors here
/// go back to the client by redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationParameters {
    pub scope: Scope,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub response_mode: ResponseMode,
    pub resources: Vec<String>,
    /// `acr_values` (OIDC Core §3.1.2.1): the requested Authentication Context
    /// Class References, in order of preference.
    pub acr_values: Vec<String>,
    /// RFC 9449 §10: the JWK thumbprint (RFC 7638, SHA-256) of the DPoP key the
    /// code is to be bound to.
    pub dpop_jkt: Option<String>,
}

/// `state` as sent, even when the rest of the request is bad: errors must echo it.
pub fn state_of(form: &Form) -> Option<String> {
    form.optional("state").ok().flatten().map(str::to_owned)
}

/// `response_mode` as far as it can be read, for sending an error back the way the
/// client asked.
pub fn response_mode_of(form: &Form) -> ResponseMode {
    match form.optional("response_mode") {
        Ok(Some("form_post")) => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    }
}

/// The longest `state`, `nonce` or `login_hint` accepted, in bytes. They travel on
/// through the sign-in (sealed in the login form, stored with the interaction and
/// the code), so an unbounded one would break the sign-in later with a confusing
/// error; real clients send tens of bytes.
pub const MAX_CARRIED_PARAMETER_LEN: usize = 2048;

impl AuthorizationParameters {
    pub fn from_form(form: &Form) -> Result<Self, RequestError> {
        let invalid = |text: &str| RequestError::new(ErrorCode::InvalidRequest, text);
        let carried = |name: &'static str, too_long: &'static str| match form.optional(name)? {
            Some(value) if value.len() > MAX_CARRIED_PARAMETER_LEN => Err(invalid(too_long)),
            value => Ok(value.map(str::to_owned)),
        };
        let response_mode = match form.optional("response_mode")? {
            None | Some("query") => ResponseMode::Query,
            Some("form_post") => ResponseMode::FormPost,
            Some(_) => return Err(invalid("response_mode must be query or form_post")),
        };
        // RFC 9101: a request object is opened before (valet-core's
        // `authorize::request_object`) and its parameters parsed here; one still
        // here was not opened, so it is refused, never ignored: a client relying
        // on its signed parameters must learn they were not used.
        if form.optional("request")?.is_some() {
            return Err(RequestError::new(
                ErrorCode::RequestNotSupported,
                "a request object is not accepted here; send it to the authorization endpoint",
            ));
        }
        if form.optional("request_uri")?.is_some() {
            return Err(RequestError::new(
                ErrorCode::RequestUriNotSupported,
                "request_uri is not supported (neither by reference nor pushed); send the request object in the request parameter or the parameters directly",
            ));
        }
        // OAuth 2.1 §4.1.1: only the code flow exists.
        match form.optional("response_type")? {
            Some("code") => {}
            None => return Err(invalid("missing required parameter response_type")),
            Some(_) => {
                return Err(RequestError::new(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                ));
            }
        }
        // RFC 7636 §4.3 and OAuth 2.1 §4.1.1: PKCE with S256 for every client.
        let code_challenge = form
            .optional("code_challenge")?
            .ok_or_else(|| invalid("code_challenge is required (PKCE with S256)"))?;
        match form.optional("code_challenge_method")? {
            Some("S256") => {}
            None => return Err(invalid("code_challenge_method must be S256")),
            Some(_) => {
                return Err(invalid(
                    "code_challenge_method must be S256; plain is not allowed",
                ));
            }
        }
        if !is_s256_challenge(code_challenge) {
            return Err(invalid(
                "code_challenge must be 43 base64url characters (S256)",
            ));
        }
        let scope = parse_scope(form)?.unwrap_or_default();
        let prompt = parse_prompt(form.optional("prompt")?)?;
        let max_age = match form.optional("max_age")? {
            Some(text) => Some(
                text.parse::<i64>()
                    .ok()
                    .filter(|age| *age >= 0)
                    .ok_or_else(|| invalid("max_age must be a non-negative integer"))?,
            ),
            None => None,
        };
        let resources = parse_resources(form)?;
        let acr_values = parse_acr_values(form.optional("acr_values")?)?;
        let dpop_jkt = parse_dpop_jkt(form)?;
        Ok(Self {
            scope,
            state: carried("state", "state is longer than 2048 bytes")?,
            nonce: carried("nonce", "nonce is longer than 2048 bytes")?,
            code_challenge: code_challenge.to_owned(),
            prompt,
            max_age,
            login_hint: carried("login_hint", "login_hint is longer than 2048 bytes")?,
            response_mode,
            resources,
            acr_values,
            dpop_jkt,
        })
    }
}

/// RFC 9449 §10 `dpop_jkt`: a SHA-256 JWK thumbprint is 43 base64url characters
/// (RFC 7638 §3), the same shape as an S256 code challenge.
fn parse_dpop_jkt(form: &Form) -> Result<Option<String>, RequestError> {
    match form.optional("dpop_jkt")? {
        Some(jkt) if is_s256_challenge(jkt) => Ok(Some(jkt.to_owned())),
        Some(_) => Err(RequestError::new(
            ErrorCode::InvalidRequest,
            "dpop_jkt must be the 43-character base64url SHA-256 JWK thumbprint",
        )),
        None => Ok(None),
    }
}

/// `acr_values`: space-separated, in order of preference (OIDC Core §3.1.2.1).
fn parse_acr_values(text: Option<&str>) -> Result<Vec<String>, RequestError> {
    match text {
        Some(text) if text.len() > MAX_CARRIED_PARAMETER_LEN => Err(RequestError::new(
            ErrorCode::InvalidRequest,
            "acr_values is longer than 2048 bytes",
        )),
        Some(text) => Ok(text
            .split(' ')
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect()),
        None => Ok(Vec::new()),
    }
}

fn parse_prompt(text: Option<&str>) -> Result<Prompt, RequestError> {
    let mut prompt = Prompt::default();
    for value in text
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // OIDC Core §3.1.2.1: select_account is a hint Valet can ignore (one
            // account per session).
            "select_account" => {}
            _ => {
                return Err(RequestError::new(
                    ErrorCode::InvalidRequest,
                    "unsupported prompt value",
                ));
            }
        }
    }
    // OIDC Core §3.1.2.1: none with any other value is an error.
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(RequestError::new(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn parse(query: &str) -> Result<AuthorizationParameters, RequestError> {
        AuthorizationParameters::from_form(&Form::parse(query.as_bytes()))
    }

    #[test]
    fn a_complete_request_parses() {
        let params = parse(&format!(
            "response_type=code&client_id=c&scope=openid%20profile&state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=login&max_age=60&response_mode=form_post"
        ));
        let params = params.unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(params.prompt.login);
        assert_eq!(params.max_age, Some(60));
        assert_eq!(params.response_mode, ResponseMode::FormPost);
        assert_eq!(params.state.as_deref(), Some("s"));
    }

    #[test]
    fn carried_parameters_are_bounded() {
        let base =
            format!("response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256");
        let at_limit = "s".repeat(MAX_CARRIED_PARAMETER_LEN);
        for name in ["state", "nonce", "login_hint"] {
            assert!(
                parse(&format!("{base}&{name}={at_limit}")).is_ok(),
                "{name}"
            );
            let error = parse(&format!("{base}&{name}={at_limit}s")).err();
            let error = error.unwrap_or_else(|| unreachable!("{name} over the limit accepted"));
            assert_eq!(error.code, ErrorCode::InvalidRequest);
            assert!(error.description.starts_with(name), "{name}: {error:?}");
        }
    }

    #[test]
    fn pkce_is_required_and_plain_refused() {
        let code = |q: &str| parse(q).err().map(|e| e.code);
        assert_eq!(code("response_type=code"), Some(ErrorCode::InvalidRequest));
        assert_eq!(
            code(&format!(
                "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain"
            )),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(&format!("response_type=code&code_challenge={CHALLENGE}")),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(&format!(
                "response_type=token&code_challenge={CHALLENGE}&code_challenge_method=S256"
            )),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert_eq!(
            code(&format!(
                "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=none%20login"
            )),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn scope_and_resources_follow_the_token_endpoint_rules() {
        let base =
            format!("response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256");
        let code = |extra: &str| parse(&format!("{base}&{extra}")).err().map(|e| e.code);
        assert_eq!(code("scope=read%22"), Some(ErrorCode::InvalidScope));
        assert_eq!(
            code("resource=https%3A%2F%2Fapi.example%23x"),
            Some(ErrorCode::InvalidTarget)
        );
        let params = parse(&format!(
            "{base}&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example"
        ))
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(params.resources, ["https://a.example", "https://b.example"]);
        assert_eq!(params.scope, Scope::default(), "no scope: the empty one");
    }
}
