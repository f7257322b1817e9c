//! Internal error text that must never reach a client, checked by the API tests
//! and the CLI tests alike.

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
