//! The PostgreSQL test database, and the rules for tests that need something
//! outside Cargo: without it they say `SKIPPED: …` (past the output capture) and
//! pass; with `VALET_REQUIRE_*` set, as in CI (`.ci/run`), they fail instead.

/// Written past the test harness's output capture, so a skip is seen on every run.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// `VALET_TEST_DATABASE_URL`, or `None` after a loud skip saying that `what` did
/// not run; panics instead when `VALET_REQUIRE_POSTGRES` is set (CI).
pub fn test_database_url(what: &str) -> Option<String> {
    match std::env::var("VALET_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("VALET_REQUIRE_POSTGRES").is_none(),
                "VALET_REQUIRE_POSTGRES is set but VALET_TEST_DATABASE_URL is not"
            );
            skip(&format!(
                "VALET_TEST_DATABASE_URL is not set; {what} did not run"
            ));
            None
        }
    }
}

/// A schema name no other test run uses: `prefix`, this process and the clock's
/// nanoseconds.
pub fn fresh_schema(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Drops `schema` and everything in it from the test database.
pub async fn drop_schema(schema: &str) {
    let url = std::env::var("VALET_TEST_DATABASE_URL").unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
}
