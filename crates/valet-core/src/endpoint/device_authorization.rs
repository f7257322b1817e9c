//! The device authorization endpoint (RFC 8628 §3.1, §3.2): a device that
//! cannot show a browser (a TV, a CLI) asks for a device code to poll the
//! token endpoint with and a user code for its user to enter at `/device`.
//!
//! The client authenticates as at the token endpoint (§3.1: "the client MUST
//! authenticate ... if it is a confidential client"; public clients name
//! themselves) and must be registered for the device grant.

use serde::Serialize;
use valet_protocol::token::{GrantType, parse_resources, parse_scope};
use valet_protocol::{ErrorCode, Form};

use crate::AuthorizationServer;
use crate::authorize::OIDC_SCOPES;
use crate::context::RequestContext;
use crate::device::{self, Decision, DeviceRequest};
use crate::endpoint::metadata::paths;
use crate::error::OAuthError;
use crate::store::Client;

/// RFC 8628 §3.2: the device authorization response.
#[derive(Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    /// Shown to the user as `BCDF-GHJK`.
    pub user_code: String,
    pub verification_uri: String,
    /// The verification URI with the user code in it (§3.3.1), for a QR code.
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

pub async fn device_authorization(
    server: &AuthorizationServer,
    context: &RequestContext,
    authorization: Option<&[u8]>,
    form: &Form,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    let now = context.now;
    let client = server
        .authenticate_client(context, authorization, form)
        .await?;
    let registered = client.client();
    if !registered.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the device authorization grant (grant type device_code)",
        ));
    }
    let (scope, resources) = permitted(registered, form)?;
    let settings = &server.settings;
    let request = DeviceRequest {
        client_id: registered.client_id.clone(),
        scope,
        resources,
        expires_at: now.saturating_add(settings.device_code_ttl),
        decision: Decision::Pending,
    };
    let codes = device::create(
        server.store.as_ref(),
        &request,
        settings.device_poll_interval,
    )
    .await?;
    let verification_uri = format!("{}{}", settings.issuer, paths::DEVICE);
    let user_code = device::display_user_code(&codes.user_code);
    Ok(DeviceAuthorizationResponse {
        verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
        verification_uri,
        device_code: codes.device_code,
        user_code,
        expires_in: settings.device_code_ttl,
        interval: settings.device_poll_interval,
    })
}

/// The scope (registered or OpenID scopes; the registered ones when none is
/// asked for) and RFC 8707 resources (registered audiences) the client may ask
/// for, as at the authorization endpoint.
fn permitted(client: &Client, form: &Form) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let scope: Vec<String> = match parse_scope(form)? {
        Some(scope) if !scope.is_empty() => scope.iter().map(str::to_owned).collect(),
        _ => client.scopes.clone(),
    };
    if scope
        .iter()
        .any(|s| !client.scopes.contains(s) && !OIDC_SCOPES.contains(&s.as_str()))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope registered for this client",
        ));
    }
    let resources = parse_resources(form)?;
    if resources.iter().any(|r| !client.audiences.contains(r)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the requested resource is not registered for this client",
        ));
    }
    Ok((scope, resources))
}
