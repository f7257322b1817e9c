//! Rules a request must satisfy beyond its syntax: what the client may ask for.

pub mod authorization_request;
pub mod redirect_uri;
pub mod resource;
pub mod scope;
