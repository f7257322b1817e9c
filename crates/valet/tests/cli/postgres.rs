//! The server and CLI on PostgreSQL: two nodes on one database agree on keys,
//! clients and revocations.

use crate::harness::*;

#[test]
fn two_nodes_share_one_postgres_database() {
    let Some(base) = test_database_url("the PostgreSQL server tests") else {
        return;
    };
    let schema = format!("valet_cli_{}_{}", std::process::id(), free_port());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(valet_store_postgres::PostgresStore::connect_with_schema(
            &base, &schema,
        ))
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let master_key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80";
    let dir = temp_dir("pg");
    let node = |port: u16| {
        let mut command = valet(&dir);
        command
            .env("VALET_MASTER_KEY", master_key)
            .args([
                "--database-url",
                &url,
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--issuer", "http://127.0.0.1:9"]);
        Server::start(command, port, dir.join(format!("node-{port}.log")))
    };
    let (port_a, port_b) = (free_port(), free_port());
    let a = node(port_a);
    let b = node(port_b);
    assert_eq!(
        a.get("/jwks.json").json(),
        b.get("/jwks.json").json(),
        "nodes disagree on keys"
    );

    let mut command = valet(&dir);
    command.env("VALET_MASTER_KEY", master_key);
    let (id, secret) = create_service_client(&dir, &["--database-url", &url]);
    let token = a.token(&id, &secret);
    assert_eq!(b.introspect(&id, &secret, &token)["active"], true);
    let revoked = b.post_form("/revoke", Some((&id, &secret)), &format!("token={token}"));
    assert_eq!(revoked.status, 200);
    assert_eq!(a.introspect(&id, &secret, &token)["active"], false);
    drop((a, b));

    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
    });
}
