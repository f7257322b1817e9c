//! The authorization endpoint's own types: what the browser sees next (a page
//! or the response to the client, RFC 6749 §4.1.2), and the scopes OpenID
//! Connect defines. The steps behind the endpoint live in `authn`, the sign-in
//! pipeline, which answers with these types.

mod outcome;
pub mod request_object;
mod response;

pub use outcome::{
    AuthorizeOutcome, ConsentPage, DevicePage, EnrolPage, LoginPage, PageError, SecondFactorPage,
};
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
