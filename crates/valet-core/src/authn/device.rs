//! The end of a device request's sign-in (RFC 8628 §3.3): where the issue
//! step would redirect a code to a client, the user's decision is recorded for
//! the device, which learns it at the token endpoint, and the browser is told
//! to return to the device. Allowing makes the grant and one authorization
//! code, of which only the hash is kept (with the device request): the
//! device's poll redeems it (see `grant/device_code.rs`).

use valet_jose::{b64url, b64url_decode, random_bytes, sha256};

use super::pending::{DeviceLink, PendingAuthorization};
use super::verify::SignedIn;
use crate::AuthorizationServer;
use crate::authorize::{AuthorizeOutcome, DevicePage, PageError};
use crate::device::{self, Decision, DeviceRequest};
use crate::error::OAuthError;
use crate::store::{AuthorizationCode, Client};

/// The device request, if still waiting for a decision, with its key; its
/// user code is taken, so exactly one decision is made per code.
async fn open_for_decision(
    server: &AuthorizationServer,
    link: &DeviceLink,
    now: i64,
) -> Result<Option<(Vec<u8>, DeviceRequest)>, OAuthError> {
    let store = server.store.as_ref();
    let (Ok(device_key), Ok(user_code_key)) = (
        b64url_decode(&link.device_key),
        b64url_decode(&link.user_code_key),
    ) else {
        return Ok(None);
    };
    let Some(request) = device::load(store, &device_key, now)
        .await?
        .filter(|r| r.decision == Decision::Pending && now < r.expires_at)
    else {
        return Ok(None);
    };
    if !device::take_user_code(store, &user_code_key, now).await? {
        return Ok(None);
    }
    Ok(Some((device_key, request)))
}

fn code_expired() -> PageError {
    PageError::new(
        400,
        "Code expired",
        "This code has expired or was already used. Start again on your device.",
    )
}

/// The user allowed the device: the grant and its code, recorded for the device.
pub(crate) async fn approve(
    server: &AuthorizationServer,
    client: &Client,
    request: &PendingAuthorization,
    link: &DeviceLink,
    user: &SignedIn,
    now: i64,
) -> Result<AuthorizeOutcome, OAuthError> {
    let Some((device_key, device_request)) = open_for_decision(server, link, now).await? else {
        return Ok(AuthorizeOutcome::ErrorPage(code_expired()));
    };
    let store = server.store.as_ref();
    let enabled = store
        .get_user(&user.user_id)
        .await?
        .is_some_and(|u| !u.disabled);
    if !enabled {
        device::decide(store, &device_key, &device_request, Decision::Denied).await?;
        return Ok(AuthorizeOutcome::ErrorPage(PageError::new(
            403,
            "Account disabled",
            "Your account is disabled.",
        )));
    }
    let mut grant = super::issue::grant(server, client, request, user, now)?;
    grant.status_idx = Some(
        server
            .allocate_status(&client.client_id, Some(grant.expires_at), now)
            .await?,
    );
    // Never shown to anyone: the device redeems it by its device code.
    let code_hash = sha256(&random_bytes::<32>().map_err(OAuthError::server)?).to_vec();
    let code = AuthorizationCode {
        code_hash: code_hash.clone(),
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: String::new(),
        // Matches no verifier: this code cannot be redeemed as a code.
        code_challenge: String::new(),
        nonce: None,
        scope: request.scope.clone(),
        resources: request.resources.clone(),
        created_at: now,
        expires_at: device_request.expires_at,
        consumed_at: None,
        // The device's tokens are bound when its poll carries a DPoP proof.
        dpop_jkt: None,
    };
    store.insert_grant_with_code(&grant, &code).await?;
    let approved = Decision::Approved {
        code_hash: b64url(&code_hash),
    };
    device::decide(store, &device_key, &device_request, approved).await?;
    Ok(AuthorizeOutcome::Device(DevicePage::Approved {
        client_name: client.name.clone(),
    }))
}

/// The user denied the device: `access_denied` at its next poll.
pub(crate) async fn deny(
    server: &AuthorizationServer,
    client: &Client,
    link: &DeviceLink,
    now: i64,
) -> Result<AuthorizeOutcome, OAuthError> {
    let Some((device_key, device_request)) = open_for_decision(server, link, now).await? else {
        return Ok(AuthorizeOutcome::ErrorPage(code_expired()));
    };
    let store = server.store.as_ref();
    device::decide(store, &device_key, &device_request, Decision::Denied).await?;
    Ok(AuthorizeOutcome::Device(DevicePage::Denied {
        client_name: client.name.clone(),
    }))
}
