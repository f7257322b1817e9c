//! Helpers shared by Valet's integration tests, one module per concern:
//!
//! - [`app`]: the app in process (router over a real store and a clock tests move),
//!   its clients and replies;
//! - [`browser`]: a browser with a cookie jar for the in-process app, and the
//!   sign-in pages' forms;
//! - [`flow`]: the authorization code flow driven through those pages;
//! - [`pkce`]: a PKCE verifier and challenge;
//! - [`postgres`]: the PostgreSQL test database and the loud skip rules;
//! - [`process`]: a binary under test as a process (the `valet` binary's path is
//!   passed in: `env!("CARGO_BIN_EXE_valet")` only works in its own crate's tests);
//! - [`http`]: a minimal HTTP/1.1 client and cookie jar for such a process;
//! - [`node`]: independent client libraries on Node.js (`tests/node/`);
//! - [`leaks`]: internal error text that must never reach a client;
//! - [`passkey`]: a software WebAuthn authenticator;
//! - [`temp`]: fresh temporary directories.
//!
//! A test binary takes one prelude: [`api`] for tests of the app in process, [`cli`]
//! for tests of the binary as a process.

// Test code: a failed step is a failed test, so panicking is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod app;
pub mod browser;
pub mod flow;
pub mod http;
pub mod leaks;
pub mod node;
pub mod passkey;
pub mod pkce;
pub mod postgres;
pub mod process;
pub mod temp;

/// Everything a test of the app in process uses: `use valet_test_support::api::*;`.
pub mod api {
    pub use crate::app::*;
    pub use crate::browser::*;
    pub use crate::flow::*;
    pub use crate::leaks::assert_no_internals;
    pub use crate::node::{node_package_available, run_node_script};
    pub use crate::passkey::{Ceremony, SoftPasskey};
    pub use crate::pkce::Pkce;
    pub use crate::postgres::{skip, test_database_url};
    pub use crate::temp::temp_dir;
}

/// Everything a test of a binary as a process uses: `use valet_test_support::cli::*;`.
pub mod cli {
    pub use crate::browser::{encode, form_field};
    pub use crate::http::*;
    pub use crate::leaks::assert_no_internals;
    pub use crate::node::{node_package_available, run_node_script};
    pub use crate::pkce::Pkce;
    pub use crate::postgres::{skip, test_database_url};
    pub use crate::process::*;
    pub use crate::temp::temp_dir;
}
