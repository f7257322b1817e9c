//! Sign-in with an upstream provider (see [`crate::upstream`] for the flow):
//! the sign-in page's button starts it, the provider's redirect back proves
//! the first factor of a linked user, and a new identity waits for the
//! user's choice (a new account, or a link made from the account page).
//! The upstream sign-in is one factor: a user's enrolled second factor is
//! still asked for, by the same steps as after a password.

use valet_jose::{b64url, sha256};
use valet_protocol::{Form, append_query};

use super::login::{interaction_field, resume_waiting_for_login};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::authn::identify::Resumed;
use crate::authn::step::Step;
use crate::authn::verify::{Method, Proved};
use crate::authorize::{AuthorizeOutcome, PageError};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::{Cookies, NewSession};
use crate::store::{SingleUseKind, Upstream, UpstreamKind};
use crate::upstream::identity::{Exchange, Failure, Identity};
use crate::upstream::provider::Provider;
use crate::upstream::records::{self, PendingIdentity, SignInState};
use crate::upstream::{self, open_secret};

/// Where an upstream step sends the browser.
pub enum UpstreamOutcome {
    /// To the provider's authorization endpoint.
    ToProvider(String),
    /// On through the sign-in steps (or an error page).
    Step(AuthorizeOutcome),
    /// An identity no account is linked to: the choices.
    Unknown(UnknownIdentityPage),
}

/// The page for an identity no account is linked to.
#[derive(Debug, Clone)]
pub struct UnknownIdentityPage {
    pub upstream: String,
    /// The pending identity's handle, for the forms.
    pub identity: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub client_name: String,
    /// Whether an account may be created (registration is open).
    pub may_register: bool,
    pub csrf: String,
}

fn page(status: u16, title: &'static str, message: impl Into<String>) -> UpstreamOutcome {
    UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(PageError::new(
        status, title, message,
    )))
}

fn unavailable() -> UpstreamOutcome {
    page(
        502,
        "Provider unavailable",
        "The provider could not be reached or did not answer as expected. Try again later, or sign in another way.",
    )
}

fn audit_failure(server: &AuthorizationServer, name: &str, reason: &str, context: &RequestContext) {
    tracing::info!(upstream = %name, %reason, "upstream sign-in refused");
    server.audit(
        AuditEvent::new(AuditKind::UpstreamFailed, context.now)
            .address(context.address)
            .request(&context.id)
            .detail("upstream", name)
            .detail("reason", reason),
    );
}

/// The upstream named `name` with its endpoints, or the page to show.
async fn provider_named(
    server: &AuthorizationServer,
    name: &str,
    context: &RequestContext,
) -> Result<Result<Provider, UpstreamOutcome>, OAuthError> {
    let known = if upstream::valid_name(name) {
        server.store.get_upstream(name).await?
    } else {
        None
    };
    let Some(upstream) = known else {
        return Ok(Err(page(
            404,
            "Unknown provider",
            "This server does not offer sign-in with that provider.",
        )));
    };
    match server.upstreams.provider(upstream, context.now).await {
        Ok(provider) => Ok(Ok(provider)),
        Err(reason) => {
            audit_failure(server, name, &format!("provider: {reason}"), context);
            Ok(Err(unavailable()))
        }
    }
}

/// `POST /upstream/{name}/start` from the sign-in page (its `interaction`
/// and `csrf`): the state is stored and the browser sent to the provider
/// with code, PKCE (S256), `state` and (OpenID) `nonce`.
pub async fn start_upstream(
    server: &AuthorizationServer,
    name: &str,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<UpstreamOutcome, OAuthError> {
    if let Err(error) = resume_waiting_for_login(server, form, cookies, context).await? {
        return Ok(UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(error)));
    }
    let provider = match provider_named(server, name, context).await? {
        Ok(provider) => provider,
        Err(outcome) => return Ok(outcome),
    };
    let csrf = cookies.csrf.unwrap_or_default();
    let state = SignInState {
        upstream: name.to_owned(),
        verifier: records::random_handle()?,
        nonce: records::random_handle()?,
        interaction: interaction_field(form).to_owned(),
        browser: records::browser_binding(csrf),
    };
    let handle = records::put(
        server.store.as_ref(),
        SingleUseKind::UpstreamState,
        &state,
        context.now,
    )
    .await?;
    let challenge = b64url(sha256(state.verifier.as_bytes()));
    let upstream = &provider.upstream;
    let scope = upstream.scopes.join(" ");
    let redirect_uri = upstream::callback_url(&server.settings.issuer, name);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", upstream.client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("state", handle.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if !scope.is_empty() {
        params.push(("scope", scope.as_str()));
    }
    if upstream.kind == UpstreamKind::Oidc {
        params.push(("nonce", state.nonce.as_str()));
    }
    Ok(UpstreamOutcome::ToProvider(append_query(
        &provider.authorization_endpoint,
        params,
    )))
}

/// `GET /upstream/{name}/callback`: the provider's answer. The state is
/// taken (once) and must be this browser's; `iss` is checked (RFC 9207
/// §2.4); an error is shown; the code is exchanged and the identity
/// established; a linked user's sign-in goes on.
pub async fn finish_upstream(
    server: &AuthorizationServer,
    name: &str,
    query: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<(UpstreamOutcome, Option<NewSession>), OAuthError> {
    let (provider, state) = match callback_checks(server, name, query, cookies, context).await? {
        Ok(checked) => checked,
        Err(outcome) => return Ok((outcome, None)),
    };
    let Ok(Some(code)) = query.optional("code") else {
        audit_failure(server, name, "no code", context);
        return Ok((
            page(
                400,
                "Sign-in failed",
                "The provider sent no authorization code.",
            ),
            None,
        ));
    };
    let upstream = &provider.upstream;
    let secret =
        open_secret(&server.master, name, &upstream.sealed_secret).map_err(OAuthError::server)?;
    let secret = zeroize::Zeroizing::new(String::from_utf8_lossy(&secret).into_owned());
    let redirect_uri = upstream::callback_url(&server.settings.issuer, name);
    let exchange = Exchange {
        code,
        verifier: &state.verifier,
        redirect_uri: &redirect_uri,
        nonce: &state.nonce,
        secret: &secret,
        now: context.now,
    };
    let identity = match server.upstreams.identity(&provider, &exchange).await {
        Ok(identity) => identity,
        Err(failure) => {
            audit_failure(server, name, failure.detail(), context);
            let outcome = match failure {
                Failure::Unavailable(_) => unavailable(),
                Failure::Invalid(_) => page(
                    400,
                    "Sign-in refused",
                    "The provider's answer could not be verified, so you are not signed in. Try again.",
                ),
            };
            return Ok((outcome, None));
        }
    };
    signed_in_upstream(server, upstream, state, identity, cookies, context).await
}

/// The state (taken once, this browser's, for this upstream), the `iss`
/// check and the provider's error, before any call to the provider.
async fn callback_checks(
    server: &AuthorizationServer,
    name: &str,
    query: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<Result<(Provider, SignInState), UpstreamOutcome>, OAuthError> {
    let expired = || {
        page(
            400,
            "Sign-in expired",
            "This sign-in has expired or was already used. Go back to the app and start again.",
        )
    };
    if !upstream::valid_name(name) {
        return Ok(Err(page(
            404,
            "Unknown provider",
            "This server does not offer sign-in with that provider.",
        )));
    }
    let Ok(Some(handle)) = query.optional("state") else {
        audit_failure(server, name, "no state", context);
        return Ok(Err(expired()));
    };
    let store = server.store.as_ref();
    let taken =
        records::take::<SignInState>(store, SingleUseKind::UpstreamState, handle, context.now);
    let Some(state) = taken.await? else {
        audit_failure(server, name, "state unknown, used or expired", context);
        return Ok(Err(expired()));
    };
    if !records::same_browser(&state.browser, cookies.csrf) {
        audit_failure(server, name, "state from another browser", context);
        return Ok(Err(page(
            403,
            "Sign-in refused",
            "This sign-in was started in another browser. Start again from the app in this browser.",
        )));
    }
    if state.upstream != name {
        audit_failure(server, name, "state for another upstream", context);
        return Ok(Err(expired()));
    }
    let provider = match provider_named(server, name, context).await? {
        Ok(provider) => provider,
        Err(outcome) => return Ok(Err(outcome)),
    };
    // RFC 9207 §2.4: a mismatching iss always refused; a missing one when
    // the provider says it sends it.
    let iss = query.optional("iss").ok().flatten();
    let expected = provider.upstream.issuer.as_deref();
    let iss_ok = match iss {
        Some(iss) => expected == Some(iss),
        None => !provider.iss_parameter,
    };
    if !iss_ok {
        audit_failure(
            server,
            name,
            "iss parameter missing or not the provider's",
            context,
        );
        return Ok(Err(page(
            400,
            "Sign-in refused",
            "The answer did not come from the provider this sign-in was sent to.",
        )));
    }
    if let Ok(Some(error)) = query.optional("error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        audit_failure(server, name, &format!("provider error {error}"), context);
        let message = if error == "access_denied" {
            "You did not allow the sign-in at the provider, so you are not signed in.".to_owned()
        } else {
            format!(
                "The provider did not sign you in ({error}). Try again, or sign in another way."
            )
        };
        return Ok(Err(page(400, "Sign-in cancelled", message)));
    }
    Ok(Ok((provider, state)))
}

/// The provider vouched for `identity`: a linked user's sign-in goes on; an
/// unknown identity is kept for the user's choice.
async fn signed_in_upstream(
    server: &AuthorizationServer,
    upstream: &Upstream,
    state: SignInState,
    identity: Identity,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<(UpstreamOutcome, Option<NewSession>), OAuthError> {
    let name = upstream.name.as_str();
    let form = interaction_form(&state.interaction, cookies.csrf);
    let Resumed {
        at,
        request,
        client,
    } = match resume_waiting_for_login(server, &form, cookies, context).await? {
        Ok(resumed) => resumed,
        Err(error) => {
            return Ok((
                UpstreamOutcome::Step(AuthorizeOutcome::ErrorPage(error)),
                None,
            ));
        }
    };
    let store = server.store.as_ref();
    let csrf = cookies.csrf.unwrap_or_default().to_owned();
    let Some(link) = store.get_upstream_link(name, &identity.subject).await? else {
        let pending = PendingIdentity {
            upstream: name.to_owned(),
            identity: identity.clone(),
            interaction: state.interaction,
            browser: state.browser,
        };
        let kind = SingleUseKind::UpstreamIdentity;
        let handle = records::put(store, kind, &pending, context.now).await?;
        return Ok((
            UpstreamOutcome::Unknown(UnknownIdentityPage {
                upstream: name.to_owned(),
                identity: handle,
                email: identity.email,
                name: identity.name,
                client_name: client.name.clone(),
                may_register: server.settings.registration == crate::config::Registration::Open,
                csrf,
            }),
            None,
        ));
    };
    let user = store.get_user(&link.user_id).await?;
    if user.is_none_or(|user| user.disabled) {
        audit_failure(server, name, "the linked user is disabled", context);
        return Ok((
            page(
                403,
                "Account disabled",
                "The account linked to this provider is disabled.",
            ),
            None,
        ));
    }
    server.audit(
        AuditEvent::new(AuditKind::UpstreamSignIn, context.now)
            .user(&link.user_id)
            .client(&client.client_id)
            .address(context.address)
            .request(&context.id)
            .detail("upstream", name),
    );
    let step = Step {
        client: &client,
        at,
        csrf,
        login: None,
        signing_in: None,
        username: None,
    };
    let proved = Proved::first(link.user_id, Method::Upstream);
    let (outcome, session) = step
        .proved(server, request, proved, cookies.session, context)
        .await?;
    Ok((UpstreamOutcome::Step(outcome), session))
}

/// A form naming the interaction, as the sign-in page's forms do.
pub(super) fn interaction_form(interaction: &str, csrf: Option<&str>) -> Form {
    Form::from_pairs([
        ("interaction".to_owned(), interaction.to_owned()),
        ("csrf".to_owned(), csrf.unwrap_or_default().to_owned()),
    ])
}
