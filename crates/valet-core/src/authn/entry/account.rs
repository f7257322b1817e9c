//! `GET /account` without a live session: the account page's sign-in enters
//! the steps for its built-in client.

use crate::AuthorizationServer;
use crate::authorize::AuthorizeOutcome;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::{self, Cookies};

use crate::authn::account::{self, Landing};
use crate::authn::pending::{self, Whereabouts};
use crate::authn::policy;
use crate::authn::step::Step;
use crate::authn::verify::SignedIn;

/// `GET /account` without a live session: the sign-in for the account page's
/// built-in client (see [`account`]), which ends back on the page.
pub async fn sign_in_to_account(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<AuthorizeOutcome, OAuthError> {
    sign_in_to(server, cookies, context, Landing::Account).await
}

/// `GET /admin` without a live session (or with one too old to make changes
/// with): the same sign-in, which ends back on the console.
pub async fn sign_in_to_console(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<AuthorizeOutcome, OAuthError> {
    sign_in_to(server, cookies, context, Landing::Console).await
}

async fn sign_in_to(
    server: &AuthorizationServer,
    cookies: Cookies<'_>,
    context: &RequestContext,
    landing: Landing,
) -> Result<AuthorizeOutcome, OAuthError> {
    let csrf = match cookies.csrf.filter(|c| c.len() == 43) {
        Some(existing) => existing.to_owned(),
        None => pending::new_csrf()?,
    };
    let client = account::client(server);
    let request = account::request(server, &csrf, landing);
    let session = session::lookup(server.store.as_ref(), cookies.session, context.now).await?;
    // A session older than the request's `max_age` (the console's) does not
    // stand for the sign-in: the password is asked for again.
    let signed_in = session
        .filter(|s| policy::session_counts(&request, s, context.now))
        .map(|s| SignedIn::from(&s));
    let step = Step {
        client: &client,
        at: Whereabouts::Fresh,
        csrf,
        login: None,
        signing_in: None,
        username: None,
    };
    step.advance(server, request, signed_in.as_ref(), context)
        .await
}
