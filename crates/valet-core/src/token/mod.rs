//! Minting the tokens Valet issues.

pub mod access_token;
