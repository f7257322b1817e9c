//! One module per endpoint. Each takes what the HTTP layer extracted (header
//! values, the parsed form) and returns a protocol response or an [`OAuthError`].
//!
//! [`OAuthError`]: crate::error::OAuthError

pub mod admin_api;
pub mod device_authorization;
pub mod end_session;
pub mod introspection;
pub mod metadata;
pub mod par;
pub mod registration;
pub mod revocation;
pub mod token;
pub mod userinfo;
