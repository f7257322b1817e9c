//! The authorization endpoint and the login and consent pages behind it
//! (RFC 6749 §4.1, OAuth 2.1 §4.1, OpenID Connect Core §3.1.2).
//!
//! ```text
//!  GET/POST /authorize ──client + redirect_uri bad──▶ error page (never redirected)
//!        │ request bad ──▶ error to redirect_uri (with state, iss)
//!        ▼
//!  session fit? ──no──▶ AwaitingLogin ──login ok──▶ consent needed? ──no──▶ code issued
//!        │ yes                                           │ yes
//!        ▼                                               ▼
//!  consent needed? ──yes──▶ AwaitingConsent ──allow──▶ code issued
//!        │ no                    └──deny──▶ access_denied
//!        ▼
//!  code issued ──▶ redirect (query or form_post) with code, state, iss (RFC 9207)
//! ```
//!
//! Until the user signs in, the pending request is carried by the browser, sealed
//! in the login form (an anonymous request writes nothing to the store); from the
//! sign-in on it lives in the store as an interaction. Either way any node can
//! serve the next step. Each form is bound to the browser by a CSRF value that is
//! both a cookie and a form field, and whose hash the request keeps.

mod flow;
mod pending;
mod response;

pub use flow::{
    AuthorizeOutcome, ConsentPage, LoginPage, PageError, authorize, submit_consent, submit_login,
};
pub use pending::CARRIED_KEY_PURPOSE;
pub use response::AuthorizationResponse;

/// Scopes OpenID Connect defines; a client with the code grant may always ask for them.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Plain words for the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".to_owned(),
        "profile" => "See your name and username".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => "Stay connected when you are not using it".to_owned(),
        other => format!("Access \u{201c}{other}\u{201d}"),
    }
}
