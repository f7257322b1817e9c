//! Bulk loader for the scale benchmark (`bench/scale.sh`): users and refresh-token
//! families, straight into Valet's own schema.
//!
//! ```text
//! cargo run --release -p valet --example seed -- \
//!     --database-url sqlite://DIR/valet.db --client-id ID --families 1000000 --users 100000
//! ```
//!
//! The store is opened first, so the real migrations create (or update) the schema;
//! then rows go in with batched multi-row `INSERT`s in large transactions (SQLite)
//! or `COPY … FROM STDIN` (PostgreSQL). The client must exist already (create it with
//! `valet client create`, which knows how to hash its secret).
//!
//! What is written, for `i` in `0..families`:
//! - a grant `g{i}` of user `u{i % users}` to the client, scope `["read"]`, live for
//!   30 days, with status-list index `i` (blocks of 1024 are reserved for it, as the
//!   allocator would have);
//! - one unused refresh token `vrt_` + base64url(SHA-256(`{token_seed}:{i}`)), stored
//!   hashed with `valet_core::token::refresh_token::hash` as Valet stores it, so a load
//!   generator can recompute real tokens from the seed and the index.
//!
//! Users `u{j}` (`user{j}`, `user{j}@bench.example.test`) all share one argon2id hash
//! of `--password`, computed once with Valet's own hasher.

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use clap::Parser;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use valet_core::token::refresh_token::{self, REFRESH_TOKEN_PREFIX};
use valet_jose::{b64url, sha256};
use valet_store_postgres::PostgresStore;
use valet_store_sqlite::SqliteStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Status-list block size used by Valet's allocator (`valet_core::status::BLOCK_SIZE`).
const BLOCK_SIZE: i64 = valet_core::status::BLOCK_SIZE;
/// Seconds an access token can outlive the grant that minted it.
const MAX_ACCESS_TOKEN_TTL: i64 = valet_core::store::MAX_ACCESS_TOKEN_TTL;
const DAY: i64 = 86_400;

#[derive(Debug, Parser)]
#[command(about = "Bulk-load users and refresh-token families for bench/scale.sh")]
struct Args {
    /// sqlite://PATH or postgres://USER@HOST/DB[?options[search_path]=SCHEMA]
    #[arg(long)]
    database_url: String,
    /// An existing client (with the refresh_token grant) that owns every family.
    #[arg(long)]
    client_id: String,
    #[arg(long, default_value_t = 1_000_000)]
    families: i64,
    #[arg(long, default_value_t = 100_000)]
    users: i64,
    /// Refresh token i is vrt_ + base64url(SHA-256("{token_seed}:{i}")).
    #[arg(long, default_value = "valet-bench")]
    token_seed: String,
    /// The password every seeded user has.
    #[arg(long, default_value = "correct horse battery staple")]
    password: String,
}

struct Plan {
    client_id: String,
    families: i64,
    users: i64,
    token_seed: String,
    password_hash: String,
    now: i64,
}

impl Plan {
    fn user_id(&self, j: i64) -> String {
        format!("u{j:07}")
    }

    fn grant_id(&self, i: i64) -> String {
        format!("g{i:08}")
    }

    fn token_hash(&self, i: i64) -> Vec<u8> {
        let token = format!(
            "{REFRESH_TOKEN_PREFIX}{}",
            b64url(sha256(format!("{}:{i}", self.token_seed).as_bytes()))
        );
        refresh_token::hash(&token)
    }

    fn grant_expires_at(&self) -> i64 {
        self.now + 30 * DAY
    }

    fn token_expires_at(&self) -> i64 {
        self.now + 14 * DAY
    }

    fn blocks(&self) -> i64 {
        (self.families + BLOCK_SIZE - 1) / BLOCK_SIZE
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    if args.users < 1 || args.families < 0 {
        return Err("--users must be at least 1 and --families not negative".into());
    }
    // The client id is written inline into SQL and COPY text below.
    if args.client_id.is_empty()
        || !args
            .client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("--client-id must be letters, digits, '.', '_' or '-'".into());
    }
    let started = Instant::now();
    let hasher = valet_core::users::PasswordHasher::with_permits(1);
    let password_hash = hasher.hash(&args.password).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .try_into()?;
    let plan = Plan {
        client_id: args.client_id,
        families: args.families,
        users: args.users,
        token_seed: args.token_seed,
        password_hash,
        now,
    };
    let url = args.database_url;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Migrations, exactly as the server runs them.
        PostgresStore::connect(&url).await?.close().await;
        let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(&url)?).await?;
        seed_postgres(&mut conn, &plan).await?;
        conn.close().await?;
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(&url);
        SqliteStore::open(Path::new(path)).await?.close().await;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A bulk load: durability comes from the final checkpoint on close.
            .synchronous(SqliteSynchronous::Off);
        let mut conn = SqliteConnection::connect_with(&options).await?;
        seed_sqlite(&mut conn, &plan).await?;
        conn.close().await?;
    }
    println!(
        "seeded {} users and {} refresh-token families in {:.1} s",
        plan.users,
        plan.families,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------
// SQLite: multi-row INSERTs, a few thousand rows per statement, one transaction per
// 100k rows.

const SQLITE_ROWS_PER_TX: i64 = 100_000;

async fn seed_sqlite(conn: &mut SqliteConnection, plan: &Plan) -> Result<(), Error> {
    sqlx::raw_sql("PRAGMA cache_size = -262144")
        .execute(&mut *conn)
        .await?;
    let scope = r#"["read"]"#;
    let amr = r#"["pwd"]"#;

    insert_sqlite_batches(conn, plan.users, 2_500, |sql, j| {
        sql.push_str(&format!(
            "('{id}','user{j}','user{j}@bench.example.test',1,'User {j}','User','{j}','{hash}',0,{now},{now}),",
            id = plan.user_id(j),
            hash = plan.password_hash,
            now = plan.now,
        ));
    }, "INSERT INTO users (user_id, username, email, email_verified, name, given_name, family_name, password_hash, disabled, created_at, updated_at) VALUES ").await?;
    println!("users: {}", plan.users);

    insert_sqlite_batches(conn, plan.families, 2_500, |sql, i| {
        sql.push_str(&format!(
            "('{g}','{c}','{u}','{scope}',NULL,{auth},'{amr}',{now},{exp},NULL,{i}),",
            g = plan.grant_id(i),
            c = plan.client_id,
            u = plan.user_id(i % plan.users),
            auth = plan.now - 60,
            now = plan.now,
            exp = plan.grant_expires_at(),
        ));
    }, "INSERT INTO grants (grant_id, client_id, user_id, scope, sid, auth_time, amr, created_at, expires_at, revoked_at, status_idx) VALUES ").await?;
    println!("grants: {}", plan.families);

    insert_sqlite_batches(conn, plan.families, 2_500, |sql, i| {
        sql.push_str(&format!(
            "(X'{h}','{g}','{c}','{scope}',{now},{exp},NULL,NULL),",
            h = hex(&plan.token_hash(i)),
            g = plan.grant_id(i),
            c = plan.client_id,
            now = plan.now,
            exp = plan.token_expires_at(),
        ));
    }, "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, scope, created_at, expires_at, rotated_at, sealed_successor) VALUES ").await?;
    println!("refresh tokens: {}", plan.families);

    insert_sqlite_batches(
        conn,
        plan.blocks(),
        2_500,
        |sql, b| {
            sql.push_str(&format!(
                "({start},{BLOCK_SIZE},'{c}',{valid},{now}),",
                start = b * BLOCK_SIZE,
                c = plan.client_id,
                valid = plan.grant_expires_at() + MAX_ACCESS_TOKEN_TTL,
                now = plan.now,
            ));
        },
        "INSERT INTO status_blocks (start, size, client_id, valid_until, reserved_at) VALUES ",
    )
    .await?;
    sqlx::query("UPDATE status_allocator SET next_idx = max(next_idx, ?) WHERE id = 1")
        .bind(plan.blocks() * BLOCK_SIZE)
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `rows` rows, `per_statement` per INSERT, built by `row` (which appends one
/// parenthesised tuple and a comma). Values are numbers, fixed ASCII, hex made here
/// and the client id checked in `main`, so they are written inline.
async fn insert_sqlite_batches(
    conn: &mut SqliteConnection,
    rows: i64,
    per_statement: i64,
    row: impl Fn(&mut String, i64),
    head: &str,
) -> Result<(), Error> {
    let mut next = 0;
    while next < rows {
        let mut tx = conn.begin().await?;
        let tx_end = (next + SQLITE_ROWS_PER_TX).min(rows);
        while next < tx_end {
            let end = (next + per_statement).min(tx_end);
            let mut sql = String::with_capacity(head.len() + 200 * (end - next) as usize);
            sql.push_str(head);
            for i in next..end {
                row(&mut sql, i);
            }
            sql.pop();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
            next = end;
        }
        tx.commit().await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// PostgreSQL: COPY in text format, about 4 MiB per message, one transaction.

async fn seed_postgres(conn: &mut PgConnection, plan: &Plan) -> Result<(), Error> {
    let mut tx = conn.begin().await?;
    let scope = r#"["read"]"#;
    let amr = r#"["pwd"]"#;

    copy_postgres(&mut tx, plan.users, "COPY users (user_id, username, email, email_verified, name, given_name, family_name, password_hash, disabled, created_at, updated_at) FROM STDIN", |buf, j| {
        buf.push_str(&format!(
            "{id}\tuser{j}\tuser{j}@bench.example.test\tt\tUser {j}\tUser\t{j}\t{hash}\tf\t{now}\t{now}\n",
            id = plan.user_id(j),
            hash = plan.password_hash,
            now = plan.now,
        ));
    }).await?;
    println!("users: {}", plan.users);

    copy_postgres(&mut tx, plan.families, "COPY grants (grant_id, client_id, user_id, scope, sid, auth_time, amr, created_at, expires_at, revoked_at, status_idx) FROM STDIN", |buf, i| {
        buf.push_str(&format!(
            "{g}\t{c}\t{u}\t{scope}\t\\N\t{auth}\t{amr}\t{now}\t{exp}\t\\N\t{i}\n",
            g = plan.grant_id(i),
            c = plan.client_id,
            u = plan.user_id(i % plan.users),
            auth = plan.now - 60,
            now = plan.now,
            exp = plan.grant_expires_at(),
        ));
    }).await?;
    println!("grants: {}", plan.families);

    copy_postgres(&mut tx, plan.families, "COPY refresh_tokens (token_hash, grant_id, client_id, scope, created_at, expires_at, rotated_at, sealed_successor) FROM STDIN", |buf, i| {
        buf.push_str(&format!(
            "\\\\x{h}\t{g}\t{c}\t{scope}\t{now}\t{exp}\t\\N\t\\N\n",
            h = hex(&plan.token_hash(i)),
            g = plan.grant_id(i),
            c = plan.client_id,
            now = plan.now,
            exp = plan.token_expires_at(),
        ));
    }).await?;
    println!("refresh tokens: {}", plan.families);

    copy_postgres(
        &mut tx,
        plan.blocks(),
        "COPY status_blocks (start, size, client_id, valid_until, reserved_at) FROM STDIN",
        |buf, b| {
            buf.push_str(&format!(
                "{start}\t{BLOCK_SIZE}\t{c}\t{valid}\t{now}\n",
                start = b * BLOCK_SIZE,
                c = plan.client_id,
                valid = plan.grant_expires_at() + MAX_ACCESS_TOKEN_TTL,
                now = plan.now,
            ));
        },
    )
    .await?;
    sqlx::query("UPDATE status_allocator SET next_idx = GREATEST(next_idx, $1) WHERE id = 1")
        .bind(plan.blocks() * BLOCK_SIZE)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    // What autovacuum would do soon after a bulk load.
    sqlx::raw_sql("ANALYZE users, grants, refresh_tokens, status_blocks")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn copy_postgres(
    conn: &mut PgConnection,
    rows: i64,
    statement: &str,
    row: impl Fn(&mut String, i64),
) -> Result<(), Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buf = String::with_capacity(8 << 20);
    for i in 0..rows {
        row(&mut buf, i);
        if buf.len() > (4 << 20) {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
