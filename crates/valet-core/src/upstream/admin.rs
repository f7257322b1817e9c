//! The operator's upstream commands (`valet upstream add|list|show|remove`):
//! an OpenID provider is added by its issuer, whose discovery document is
//! fetched and checked now (and stored, as the fallback when it cannot be
//! fetched later); a plain OAuth 2 provider by its three endpoints and the
//! userinfo claims that name the user. The client secret is sealed.

use serde::Serialize;
use valet_jose::MasterKey;

use super::Upstreams;
use super::fetch::check_url;
use crate::admin::{AdminError, Field, Resource};
use crate::audit::{AuditEvent, AuditKind};
use crate::store::{Store, StoreError, Upstream, UpstreamKind};

/// An upstream to add.
#[derive(Debug, Clone)]
pub struct NewUpstream {
    pub name: String,
    pub kind: UpstreamKind,
    /// Required for the OpenID kind.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Empty: `openid email profile` (OpenID kind) or none (OAuth 2 kind).
    pub scopes: Vec<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    /// Defaults: `sub`, `email`, `name`.
    pub subject_claim: Option<String>,
    pub email_claim: Option<String>,
    pub name_claim: Option<String>,
}

/// An upstream as the operator sees it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamRecord {
    pub name: String,
    pub kind: &'static str,
    pub issuer: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub subject_claim: String,
    pub email_claim: String,
    pub name_claim: String,
    pub created_at: i64,
}

impl From<&Upstream> for UpstreamRecord {
    fn from(upstream: &Upstream) -> Self {
        Self {
            name: upstream.name.clone(),
            kind: upstream.kind.as_str(),
            issuer: upstream.issuer.clone(),
            client_id: upstream.client_id.clone(),
            scopes: upstream.scopes.clone(),
            authorization_endpoint: upstream.authorization_endpoint.clone(),
            token_endpoint: upstream.token_endpoint.clone(),
            userinfo_endpoint: upstream.userinfo_endpoint.clone(),
            subject_claim: upstream.subject_claim.clone(),
            email_claim: upstream.email_claim.clone(),
            name_claim: upstream.name_claim.clone(),
            created_at: upstream.created_at,
        }
    }
}

fn invalid(field: &'static str, value: Option<&str>, reason: impl Into<String>) -> AdminError {
    AdminError::invalid(Field::new(field), value.map(str::to_owned), reason.into())
}

/// Checks `new`, fetches an OpenID provider's discovery document, seals the
/// secret and stores the upstream.
pub async fn add(
    store: &dyn Store,
    master: &MasterKey,
    upstreams: &Upstreams,
    new: NewUpstream,
    now: i64,
) -> Result<UpstreamRecord, AdminError> {
    check(&new)?;
    let metadata = match new.kind {
        UpstreamKind::Oidc => Some(discovered(upstreams, new.issuer.as_deref()).await?),
        UpstreamKind::Oauth2 => {
            for (field, value) in [
                ("authorization_endpoint", &new.authorization_endpoint),
                ("token_endpoint", &new.token_endpoint),
                ("userinfo_endpoint", &new.userinfo_endpoint),
            ] {
                if value.is_none() {
                    return Err(invalid(field, None, "is required for an OAuth 2 upstream"));
                }
            }
            None
        }
    };
    let sealed_secret = super::seal_secret(master, &new.name, &new.client_secret)
        .map_err(|error| AdminError::Internal(format!("could not seal the secret: {error}")))?;
    let scopes = scopes_for(new.kind, new.scopes);
    let claim = |value: Option<String>, default: &str| value.unwrap_or_else(|| default.to_owned());
    let upstream = Upstream {
        name: new.name,
        kind: new.kind,
        issuer: new.issuer,
        client_id: new.client_id,
        sealed_secret,
        scopes,
        authorization_endpoint: new.authorization_endpoint,
        token_endpoint: new.token_endpoint,
        userinfo_endpoint: new.userinfo_endpoint,
        subject_claim: claim(new.subject_claim, "sub"),
        email_claim: claim(new.email_claim, "email"),
        name_claim: claim(new.name_claim, "name"),
        metadata,
        created_at: now,
    };
    match store.insert_upstream(&upstream).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(AdminError::conflict(
                Field::new("name"),
                Some(upstream.name),
                "an upstream with this name exists",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    audit(store, AuditKind::UpstreamAdded, &upstream.name, now).await;
    Ok(UpstreamRecord::from(&upstream))
}

/// The fields that need no fetch: name, client, endpoint URLs.
fn check(new: &NewUpstream) -> Result<(), AdminError> {
    if !super::valid_name(&new.name) {
        return Err(invalid(
            "name",
            Some(&new.name),
            "must be 1 to 32 characters, each a-z, 0-9 or '-'",
        ));
    }
    if new.client_id.is_empty() {
        return Err(invalid("client_id", None, "must not be empty"));
    }
    if new.client_secret.is_empty() {
        return Err(invalid("client_secret", None, "must not be empty"));
    }
    let endpoint = |field: &'static str, value: &Option<String>| -> Result<(), AdminError> {
        match value {
            Some(uri) => check_url(uri)
                .map(|_| ())
                .map_err(|reason| invalid(field, Some(uri), reason)),
            None => Ok(()),
        }
    };
    endpoint("authorization_endpoint", &new.authorization_endpoint)?;
    endpoint("token_endpoint", &new.token_endpoint)?;
    endpoint("userinfo_endpoint", &new.userinfo_endpoint)?;
    Ok(())
}

/// An OpenID provider is always asked for `openid` (by default with `email
/// profile`); an OAuth 2 provider for what was given.
fn scopes_for(kind: UpstreamKind, scopes: Vec<String>) -> Vec<String> {
    match (scopes.is_empty(), kind) {
        (true, UpstreamKind::Oidc) => ["openid", "email", "profile"].map(str::to_owned).to_vec(),
        (_, UpstreamKind::Oidc) if !scopes.iter().any(|s| s == "openid") => {
            let mut with_openid = vec!["openid".to_owned()];
            with_openid.extend(scopes);
            with_openid
        }
        _ => scopes,
    }
}

/// The issuer's discovery document, checked, as stored text.
async fn discovered(upstreams: &Upstreams, issuer: Option<&str>) -> Result<String, AdminError> {
    let Some(issuer) = issuer else {
        return Err(invalid(
            "issuer",
            None,
            "is required for an OpenID upstream",
        ));
    };
    check_url(issuer).map_err(|reason| invalid("issuer", Some(issuer), reason))?;
    upstreams
        .discover(issuer)
        .await
        .map(|(_, text)| text)
        .map_err(|reason| {
            invalid(
                "issuer",
                Some(issuer),
                format!("its discovery document is not usable: {reason}"),
            )
        })
}

pub async fn list(store: &dyn Store) -> Result<Vec<UpstreamRecord>, AdminError> {
    Ok(store
        .list_upstreams()
        .await?
        .iter()
        .map(UpstreamRecord::from)
        .collect())
}

pub async fn show(store: &dyn Store, name: &str) -> Result<UpstreamRecord, AdminError> {
    store
        .get_upstream(name)
        .await?
        .as_ref()
        .map(UpstreamRecord::from)
        .ok_or_else(|| AdminError::not_found(Resource::Upstream, name))
}

/// Removes the upstream and every link to it.
pub async fn remove(store: &dyn Store, name: &str, now: i64) -> Result<(), AdminError> {
    if !store.delete_upstream(name).await? {
        return Err(AdminError::not_found(Resource::Upstream, name));
    }
    audit(store, AuditKind::UpstreamRemoved, name, now).await;
    Ok(())
}

async fn audit(store: &dyn Store, kind: AuditKind, name: &str, now: i64) {
    let event = AuditEvent::new(kind, now)
        .detail("upstream", name)
        .detail("via", "cli");
    if let Err(error) = store.append_audit_events(&[event]).await {
        tracing::warn!(%error, "could not record the audit event");
    }
}
