//! The web console's gate: who may use the pages under `/admin`, and the admin
//! service they change things through.
//!
//! The console uses Valet's own browser session (the cookie the sign-in steps
//! set, second factor included): no token ever reaches the browser's
//! JavaScript. A session whose user has the admin role may read every page; a
//! change also needs a sign-in within [`CONSOLE_MAX_AGE`] and the page's CSRF
//! value (the account pages' mechanism: a value derived from the session
//! cookie, so it dies with the session). Every change goes through
//! [`Admin`] with [`Actor::console`], so the audit trail names the operator.

use crate::AuthorizationServer;
use crate::account::{form_token, form_token_matches};
use crate::admin::{Actor, Admin};
use crate::error::OAuthError;
use crate::session;
use crate::store::{Session, User};

pub use crate::authn::account::CONSOLE_MAX_AGE;

/// Who is asking for a console page.
pub enum Gate {
    /// No live session: the sign-in comes first.
    SignedOut,
    /// Signed in, without the admin role.
    NotAdmin,
    Operator(Box<Operator>),
}

/// A signed-in user with the admin role. Built only by [`gate`].
pub struct Operator {
    pub session: Session,
    pub user: User,
    csrf: String,
}

impl Operator {
    /// The CSRF value every console form carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's CSRF value is this session's (constant-time).
    pub fn form_token_matches(&self, cookie: &str, form: Option<&str>) -> bool {
        form_token_matches(cookie, form)
    }

    /// Whether the sign-in is recent enough for a change (OIDC Core §2
    /// `auth_time`, as `max_age` would judge it).
    pub fn signed_in_recently(&self, now: i64) -> bool {
        now.saturating_sub(self.session.auth_time) <= CONSOLE_MAX_AGE
    }

    /// The admin service acting as this operator (`via=console`,
    /// `actor=<user_id>` in every audit record).
    pub fn admin<'a>(&self, server: &'a AuthorizationServer) -> Admin<'a> {
        Admin::new(
            server.store.as_ref(),
            server.clock.as_ref(),
            &server.hasher,
            server.settings.access_token_max_ttl,
            Actor::console(self.user.user_id.as_str()),
        )
        .with_master_key(&server.master)
    }
}

/// Who the session cookie belongs to, and whether they may use the console.
/// A disabled user's session counts as none ([`session::lookup`]).
pub async fn gate(
    server: &AuthorizationServer,
    cookie: Option<&str>,
    now: i64,
) -> Result<Gate, OAuthError> {
    let Some(session) = session::lookup(server.store.as_ref(), cookie, now).await? else {
        return Ok(Gate::SignedOut);
    };
    let Some(user) = server.store.get_user(&session.user_id).await? else {
        return Ok(Gate::SignedOut);
    };
    if !user.admin {
        return Ok(Gate::NotAdmin);
    }
    Ok(Gate::Operator(Box::new(Operator {
        session,
        user,
        csrf: form_token(cookie.unwrap_or_default()),
    })))
}

/// After a console change to a client: this node forgets its cached copy at
/// once (other nodes within `client_cache_ttl`, as for every admin change).
pub fn forget_client(server: &AuthorizationServer, client_id: &str) {
    server.authenticator.clients().invalidate(client_id);
}
