//! The `valet` binary from the outside: the server as a process, the CLI against
//! the same store, restarts, signals and what lands on disk.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod account_e2e;
mod admin_api;
mod attacks;
mod audit_command;
mod benchmark_mode;
mod browser_e2e;
mod client_commands;
mod cluster;
mod config_errors;
mod console_browser;
mod dpop_e2e;
mod durability;
mod federation;
mod federation_peers;
mod gateway;
mod gateway_browser;
mod guard_proxy;
mod harness;
mod i18n_e2e;
mod key_commands;
mod load;
mod mail;
mod mail_browser;
mod mfa_e2e;
mod observability;
mod openid_rp;
mod operations;
mod packaging;
mod passkey_e2e;
mod postgres;
mod secrets_in_logs;
mod serve;
mod tls;
mod token_decode;
mod user_commands;
mod webdriver;
