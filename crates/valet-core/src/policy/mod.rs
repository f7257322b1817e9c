//! Rules a request must satisfy beyond its syntax: what the client may ask for.

pub mod redirect_uri;
pub mod resource;
pub mod scope;
