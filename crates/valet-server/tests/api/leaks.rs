//! Internal error text that must never reach a client. Shared with the CLI
//! tests (`crates/valet/tests/cli/main.rs` includes this file by path), so it
//! uses nothing but `std`.

/// Asserts that `body` carries no panic message, backtrace, source path or
/// internal type name.
pub fn assert_no_internals(body: &str, context: &str) {
    for leak in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "sqlx",
        "SQLITE",
        "src/",
        ".rs:",
        "hyper::",
        "valet_core",
        "Error {",
    ] {
        assert!(
            !body.contains(leak),
            "{context}: {leak:?} in the body: {body}"
        );
    }
}
