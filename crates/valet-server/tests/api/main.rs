//! The HTTP API driven end to end through the router (no sockets), on a real
//! SQLite store, with a clock the tests move.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod account;
mod admin;
mod admin_api;
mod admin_api_clients;
mod admin_api_grants;
mod admin_api_openapi;
mod admin_api_users;
mod attacks;
mod audit;
mod browser;
mod client_jwt;
mod client_metadata;
mod client_registration;
mod client_secrets;
mod console;
mod console_users;
mod cors;
mod device;
mod disabled_users;
mod discovery;
mod dpop;
mod email_change;
mod email_verification;
mod i18n;
mod independent;
mod introspection;
mod jar;
mod jwe;
mod jwt_attacks;
mod keys;
mod limits;
mod lockout;
mod logout;
mod metrics;
mod mfa;
mod par;
mod passkeys;
mod password_reset;
mod races;
mod refresh;
mod registration;
mod request_context;
mod revocation;
mod secret_jwt;
mod secret_rotation;
mod status;
mod token;
mod token_exchange;
