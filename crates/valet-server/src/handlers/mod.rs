//! One thin handler per endpoint: extract, call the core, convert.

pub mod health;
pub mod jwks;
pub mod metadata;
pub mod token_endpoints;
