//! Three `valet serve` nodes on one PostgreSQL schema, as behind a load balancer:
//! one issuer, different ports, a shared `VALET_MASTER_KEY`, nothing else shared
//! but the database. A sign-in moves from node to node; a key rotation made with
//! the CLI is seen by every node before any token carries the new key; a node
//! killed with SIGKILL under load loses nothing a client received.
//!
//! The nodes start together on an empty schema, so they also run the migrations
//! at the same moment (an advisory lock serializes them).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::load::*;

const MASTER_KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80";
const USERNAME: &str = "cluster-alice";

struct Cluster {
    dir: PathBuf,
    base: String,
    schema: String,
    /// The database URL every node and CLI command uses.
    url: String,
    issuer: String,
    ports: Vec<u16>,
    nodes: Vec<Server>,
}

impl Cluster {
    /// Three nodes on a fresh, empty schema; `env` goes to the nodes and the CLI.
    fn start(label: &str, env: &[(&str, &str)]) -> Option<Cluster> {
        let base = test_database_url("the PostgreSQL cluster tests")?;
        let schema = format!(
            "valet_cluster_{label}_{}_{}",
            std::process::id(),
            free_port()
        );
        block_on(async {
            let pool = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        });
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options[search_path]={schema}");
        let dir = temp_dir(&format!("cluster-{label}"));
        // The load balancer's address: the one issuer of every node.
        let issuer = format!("http://127.0.0.1:{}", free_port());
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            dir,
            base,
            schema,
            url,
            issuer,
            ports: ports.clone(),
            nodes: Vec::new(),
        };
        cluster.nodes = std::thread::scope(|scope| {
            let starting: Vec<_> = ports
                .iter()
                .map(|&port| {
                    let mut command = cluster.command(env);
                    command.args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
                    command.args(["--issuer", &cluster.issuer]);
                    let log = cluster.dir.join(format!("node-{port}.log"));
                    scope.spawn(move || Server::start(command, port, log))
                })
                .collect();
            starting.into_iter().map(|s| s.join().unwrap()).collect()
        });
        Some(cluster)
    }

    /// `valet --database-url …` with the shared master key.
    fn command(&self, env: &[(&str, &str)]) -> Command {
        let mut command = valet(&self.dir);
        command
            .env("VALET_MASTER_KEY", MASTER_KEY)
            .envs(env.iter().copied())
            .args(["--database-url", &self.url]);
        command
    }

    fn cli(&self) -> Command {
        self.command(&[])
    }

    /// A service client that also introspects the other clients' tokens.
    fn service_client(&self) -> Creds {
        let (id, secret) = create_client_with(
            self.cli(),
            &[],
            &[
                "--name",
                "billing",
                "--audience",
                "https://api.example.test",
                "--introspect-any",
            ],
        );
        Creds { id, secret }
    }

    fn key_list(&self, env: &[(&str, &str)]) -> Vec<Value> {
        let mut command = self.command(env);
        command.args(["key", "list", "--json"]);
        stdout_json(&run_ok(command)).as_array().unwrap().clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let (base, schema) = (self.base.clone(), self.schema.clone());
        block_on(async move {
            if let Ok(pool) = sqlx::PgPool::connect(&base).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        });
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn bearer_get(port: u16, path: &str, token: &str) -> Reply {
    http(
        port,
        "GET",
        path,
        &[("Authorization", format!("Bearer {token}"))],
        "",
    )
    .unwrap()
}

#[test]
fn a_sign_in_starts_on_one_node_and_finishes_on_the_others() {
    let Some(cluster) = Cluster::start("flow", &[]) else {
        return;
    };
    let [a, b, c] = [cluster.ports[0], cluster.ports[1], cluster.ports[2]];
    let user_id = create_user_with(cluster.cli(), &[], USERNAME, PASSWORD);
    // An app that asks for consent, so the flow has three steps.
    let (id, secret) = create_client_with(
        cluster.cli(),
        &[],
        &["--name", "Cluster App", "--redirect-uri", REDIRECT_URI],
    );
    let app = Creds { id, secret };
    let mut jar = CookieJar::default();
    let pkce = Pkce::new();

    let login = jar.send(a, "GET", &authorize_path(&app.id, &pkce), "");
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    let body = form_body(&[
        (
            "interaction",
            &form_field(&login.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&login.body, "csrf").unwrap()),
        ("username", USERNAME),
        ("password", PASSWORD),
    ]);
    let consent = jar.send(b, "POST", "/login", &body);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains("name=\"decision\""),
        "{}",
        consent.body
    );
    assert!(jar.has("valet-session"));
    let body = form_body(&[
        (
            "interaction",
            &form_field(&consent.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&consent.body, "csrf").unwrap()),
        ("decision", "allow"),
    ]);
    let back = jar.send(c, "POST", "/consent", &body);
    assert_eq!(back.status, 303, "{}", back.body);
    let params = location_params(&back);
    assert_eq!(params["state"], "s1");
    assert_eq!(params["iss"], cluster.issuer, "one issuer for every node");

    let reply = redeem(a, &app, &params["code"], &pkce.verifier);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let tokens = reply.json();
    let id_token = tokens["id_token"].as_str().unwrap();
    // Signed on A, verified with B's keys.
    let verified = jwks(b).1.verify(id_token, "JWT").unwrap();
    assert_eq!(verified.claims["sub"], user_id.as_str());
    assert_eq!(verified.claims["iss"], cluster.issuer.as_str());
    assert_eq!(verified.claims["aud"], app.id.as_str());
    assert_eq!(verified.claims["nonce"], "n1");
    let first_refresh = tokens["refresh_token"].as_str().unwrap();

    let refreshed = refresh(c, &app, first_refresh).unwrap();
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let refreshed = refreshed.json();
    let access = refreshed["access_token"].as_str().unwrap();
    let info = bearer_get(b, "/userinfo", access);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["sub"], user_id.as_str());
    assert_eq!(info.json()["preferred_username"], USERNAME);

    // The session and the consent are in the database: C knows this browser.
    let again = jar.send(c, "GET", &authorize_path(&app.id, &Pkce::new()), "");
    assert_eq!(again.status, 303, "{}", again.body);
    assert!(location_params(&again).contains_key("code"));

    // The rotated token replayed at A revokes the family everywhere.
    let replay = refresh(a, &app, first_refresh).unwrap();
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(bearer_get(b, "/userinfo", access).status, 401);
    let second_refresh = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(c, &app, second_refresh).unwrap().status, 400);
}

/// One token as a node issued it during the rotation.
struct Seen {
    node: usize,
    token: String,
    typ: &'static str,
    kid: String,
    iat: i64,
}

/// Checks a token the moment it was received: its `kid` is in every node's JWKS
/// and it verifies with the keys each of the other nodes publishes.
fn check_everywhere(token: &str, typ: &str, node: usize, ports: &[u16]) -> String {
    let (header, _) = jwt_parts(token);
    let kid = header["kid"].as_str().unwrap().to_owned();
    for (other, &port) in ports.iter().enumerate() {
        let (body, keys) = jwks(port);
        assert!(
            keys.algorithm_of(&kid).is_some(),
            "node {node} signed with {kid}, which node {other} does not publish: {body}"
        );
        if other != node {
            keys.verify(token, typ)
                .unwrap_or_else(|e| panic!("node {node}'s token fails at node {other}: {e}"));
        }
    }
    kid
}

/// One node's share of the load: client_credentials tokens, every fifth round a
/// refresh (access and RS256 ID token), each checked at once.
fn rotation_load(
    node: usize,
    ports: &[u16],
    service: &Creds,
    chain: &mut Chain,
    stop: &AtomicBool,
    seen: &Mutex<Vec<Seen>>,
) {
    let port = ports[node];
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let reply = try_post_form(
            port,
            "/token",
            service.basic(),
            "grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut issued = vec![(
            reply.json()["access_token"].as_str().unwrap().to_owned(),
            "at+jwt",
        )];
        if round % 5 == 0 {
            let tokens = chain.rotate(port);
            issued.push((
                tokens["access_token"].as_str().unwrap().to_owned(),
                "at+jwt",
            ));
            issued.push((tokens["id_token"].as_str().unwrap().to_owned(), "JWT"));
        }
        for (token, typ) in issued {
            let kid = check_everywhere(&token, typ, node, ports);
            if typ == "at+jwt" {
                let at = ports[random_below(ports.len())];
                assert_eq!(introspect(at, service, &token)["active"], true);
            }
            let iat = jwt_parts(&token).1["iat"].as_i64().unwrap();
            seen.lock().unwrap().push(Seen {
                node,
                token,
                typ,
                kid,
                iat,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `valet key rotate` while the nodes serve, with the shortest publication lead
/// the configuration allows (60 s: keys are reloaded every 10 s), so this test
/// takes a little over a minute. Tokens are issued and checked on every node
/// throughout, until every node signs both kinds of token with the new keys.
#[test]
fn a_key_rotation_is_seen_by_every_node_and_no_token_fails_verification() {
    const LEAD: (&str, &str) = ("VALET_KEY_PUBLISH_LEAD", "60");
    let Some(cluster) = Cluster::start("rotation", &[LEAD]) else {
        return;
    };
    let ports = cluster.ports.clone();
    create_user_with(cluster.cli(), &[], USERNAME, PASSWORD);
    let app = create_web_app(cluster.cli(), &[], "Rotation App", 0);
    let service = cluster.service_client();
    let mut jar = CookieJar::default();
    let mut chains: Vec<Chain> = ports
        .iter()
        .map(|&port| Chain::start(&mut jar, [port; 3], &app, USERNAME))
        .collect();
    let signing = |keys: &[Value], alg: &str, state: &str| -> Value {
        keys.iter()
            .find(|k| k["alg"] == alg && k["state"] == state)
            .unwrap_or_else(|| panic!("no {state} {alg} key: {keys:?}"))
            .clone()
    };
    let before = cluster.key_list(&[LEAD]);
    let kid = |key: Value| key["kid"].as_str().unwrap().to_owned();
    let old_es = kid(signing(&before, "ES256", "signing"));
    let old_rs = kid(signing(&before, "RS256", "signing"));

    let seen = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let (new_es, new_rs, es_from, rs_from) = std::thread::scope(|scope| {
        let loads: Vec<_> = chains
            .iter_mut()
            .enumerate()
            .map(|(node, chain)| {
                let (ports, service, stop, seen) = (&ports, &service, &stop, &seen);
                scope.spawn(move || rotation_load(node, ports, service, chain, stop, seen))
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        for alg in ["ES256", "RS256"] {
            let mut rotate = cluster.command(&[LEAD]);
            rotate.args(["key", "rotate", "--alg", alg]);
            let out = String::from_utf8(run_ok(rotate).stdout).unwrap();
            assert!(out.contains("published now"), "{out}");
        }
        let pending = cluster.key_list(&[LEAD]);
        let new_es = signing(&pending, "ES256", "pending");
        let new_rs = signing(&pending, "RS256", "pending");
        let from = |key: &Value| key["activates_at"].as_i64().unwrap();
        let (es_from, rs_from) = (from(&new_es), from(&new_rs));
        let (new_es, new_rs) = (kid(new_es), kid(new_rs));

        // Until every node has signed an access token and an ID token with the new keys.
        let deadline = Instant::now() + Duration::from_secs(100);
        loop {
            let done = {
                let seen = seen.lock().unwrap();
                (0..ports.len()).all(|node| {
                    [&new_es, &new_rs]
                        .iter()
                        .all(|&kid| seen.iter().any(|s| s.node == node && s.kid == *kid))
                })
            };
            // A load thread ends only by failing: the scope reports it.
            let failed = loads.iter().any(|load| load.is_finished());
            if done || failed || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        stop.store(true, Ordering::SeqCst);
        (new_es, new_rs, es_from, rs_from)
    });

    let seen = seen.into_inner().unwrap();
    for node in 0..ports.len() {
        for kid in [&new_es, &new_rs] {
            assert!(
                seen.iter().any(|s| s.node == node && s.kid == *kid),
                "node {node} never signed with {kid}"
            );
        }
    }
    // Published before it signs, then signing on every node from the same second:
    // a token's key is decided by its `iat` alone.
    for s in &seen {
        let (old, new, from) = if s.typ == "JWT" {
            (&old_rs, &new_rs, rs_from)
        } else {
            (&old_es, &new_es, es_from)
        };
        let expected = if s.iat >= from { new } else { old };
        assert_eq!(
            s.kid, *expected,
            "node {} at {} (new key from {from})",
            s.node, s.iat
        );
    }
    // The old keys stay published: everything issued still verifies everywhere.
    let keys: Vec<_> = ports.iter().map(|&port| jwks(port).1).collect();
    for s in &seen {
        for set in &keys {
            set.verify(&s.token, s.typ).unwrap();
        }
    }
    let after = cluster.key_list(&[LEAD]);
    assert_eq!(kid(signing(&after, "ES256", "signing")), new_es);
    assert_eq!(kid(signing(&after, "ES256", "retiring")), old_es);
    assert_eq!(kid(signing(&after, "RS256", "signing")), new_rs);
    eprintln!(
        "cluster rotation: {} tokens issued and checked on 3 nodes ({} signed with the new keys)",
        seen.len(),
        seen.iter()
            .filter(|s| s.kid == new_es || s.kid == new_rs)
            .count()
    );
}

#[test]
fn a_node_killed_under_load_loses_no_token_a_client_received() {
    let Some(mut cluster) = Cluster::start("kill", &[]) else {
        return;
    };
    let ports = cluster.ports.clone();
    create_user_with(cluster.cli(), &[], USERNAME, PASSWORD);
    let strict = create_web_app(cluster.cli(), &[], "Strict App", 0);
    let grace = create_web_app(cluster.cli(), &[], "Grace App", 30);
    let service = cluster.service_client();
    let mut jar = CookieJar::default();
    let mut chains: Vec<Chain> = (0..6)
        .map(|i| {
            let app = if i % 2 == 0 { &strict } else { &grace };
            let at = |k: usize| ports[(i + k) % 3];
            Chain::start(&mut jar, [at(0), at(1), at(2)], app, USERNAME)
        })
        .collect();

    let victim = random_below(3);
    let stop = AtomicBool::new(false);
    let received: Vec<String> = std::thread::scope(|scope| {
        let issuers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| issue_tokens(&service, &ports, &stop)))
            .collect();
        for chain in chains.iter_mut() {
            let (ports, stop) = (&ports, &stop);
            scope.spawn(move || chain.run(ports, stop));
        }
        std::thread::sleep(Duration::from_millis(500 + random_below(1000) as u64));
        cluster.nodes[victim].sigkill();
        // The load goes on at the survivors for a while.
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::SeqCst);
        issuers
            .into_iter()
            .flat_map(|issuer| issuer.join().unwrap())
            .collect()
    });
    let survivors: Vec<u16> = ports
        .iter()
        .enumerate()
        .filter(|(node, _)| *node != victim)
        .map(|(_, &port)| port)
        .collect();
    let any_survivor = || survivors[random_below(survivors.len())];

    // A second has passed since the kill: a commit the dead node had sent is done.
    let recoveries: Vec<(bool, Recovery)> = chains
        .iter_mut()
        .filter(|c| c.in_doubt)
        .map(|chain| (chain.app.grace, chain.recover(any_survivor(), &service)))
        .collect();
    assert!(
        recoveries
            .iter()
            .all(|(grace, r)| !grace || *r != Recovery::StrictReuse)
    );
    check_service_tokens(&received, &survivors, &service);
    for chain in &chains {
        chain.check(any_survivor(), &service, true);
    }
    for chain in &mut chains {
        chain.finish(survivors[0], survivors[1], &service);
    }
    eprintln!(
        "cluster kill: node {victim} killed; {} client_credentials tokens and {} refresh rotations received, all honoured by the survivors; lost answers: {recoveries:?}",
        received.len(),
        chains.iter().map(|c| c.refresh.len() - 1).sum::<usize>()
    );
}

/// A refresh whose node dies while it writes the rotation and the record of the
/// new access token's `jti` (which a later revocation of the family reaches;
/// both are one transaction). The test holds the write up with a table lock,
/// kills the node while it waits, and retries at another node within the
/// client's grace window.
/// Whatever pair the retry gets, revoking the family must then kill its access
/// token at introspection and UserInfo, as it does at resource servers (through
/// the status list).
#[test]
fn a_refresh_cut_off_by_a_crash_stays_revocable() {
    let Some(mut cluster) = Cluster::start("cutoff", &[]) else {
        return;
    };
    let [a, b, c] = [cluster.ports[0], cluster.ports[1], cluster.ports[2]];
    create_user_with(cluster.cli(), &[], USERNAME, PASSWORD);
    let app = create_web_app(cluster.cli(), &[], "Grace App", 30);
    let service = cluster.service_client();
    let mut chain = Chain::start(&mut CookieJar::default(), [a, a, a], &app, USERNAME);
    let held = chain.last().to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = runtime
        .block_on(sqlx::PgPool::connect(&cluster.base))
        .unwrap();
    let table = format!("{}.grant_access_tokens", cluster.schema);
    let mut lock = runtime.block_on(pool.begin()).unwrap();
    runtime
        .block_on(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "LOCK TABLE {table} IN EXCLUSIVE MODE"
            )))
            .execute(&mut *lock),
        )
        .unwrap();
    let waiting = || -> i64 {
        runtime
            .block_on(
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '{table}'::regclass"
                )))
                .fetch_one(&pool),
            )
            .unwrap()
    };
    std::thread::scope(|scope| {
        let creds = app.creds.clone();
        let cut_off = scope.spawn(move || refresh(a, &creds, &held));
        let deadline = Instant::now() + Duration::from_secs(20);
        while waiting() == 0 {
            assert!(
                Instant::now() < deadline,
                "the refresh never reached the record"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.nodes[0].sigkill();
        assert!(cut_off.join().unwrap().is_err(), "the answer was lost");
    });
    runtime.block_on(lock.rollback()).unwrap();
    // The dead node's transaction ends once its statement may run.
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting() > 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }

    let pair = chain.rotate(b);
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(introspect(c, &service, access)["active"], true);
    let revoked = try_post_form(
        c,
        "/revoke",
        app.creds.basic(),
        &form_body(&[
            ("token", pair["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
        ]),
    )
    .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        introspect(b, &service, access)["active"],
        false,
        "an access token of a revoked family is still active"
    );
    assert_eq!(bearer_get(c, "/userinfo", access).status, 401);
    runtime.block_on(pool.close());
}
