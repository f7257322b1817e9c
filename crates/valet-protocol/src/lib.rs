//! Valet's wire types: what goes over HTTP, with no I/O.
//!
//! Requests are parsed once into typed values ("parse, don't validate"); the
//! authorization server's logic only ever sees those.

pub mod authorize;
pub mod bearer;
pub mod error;
pub mod form;
pub mod metadata;
pub mod pkce;
pub mod registration;
pub mod scope;
pub mod token;

pub use error::{ErrorCode, ErrorResponse};
pub use form::{Form, FormError, append_query, encode_component};
pub use scope::{Scope, ScopeError};
