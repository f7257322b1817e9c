//! Rules a request must satisfy beyond its syntax: what the client may ask for.

pub mod resource;
pub mod scope;
