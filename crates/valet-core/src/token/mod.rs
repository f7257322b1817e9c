//! Minting the tokens Valet issues.

pub mod access_token;
pub mod encryption;
pub mod id_token;
pub mod refresh_token;
pub mod status_claim;
