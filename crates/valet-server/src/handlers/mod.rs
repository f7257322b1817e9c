//! One thin handler per endpoint: extract, call the core, convert.

pub mod account;
pub mod admin_api;
pub mod authorize;
pub mod client_registration;
pub mod console;
pub mod device;
pub mod health;
pub mod jwks;
pub mod logout;
pub mod metadata;
pub mod par;
pub mod passkeys;
pub mod register;
pub mod reset;
pub mod status;
pub mod token_endpoints;
pub mod upstream;
pub mod userinfo;
pub mod verify_email;
