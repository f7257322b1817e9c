//! Operations that cannot lose data: no store or master key made by accident,
//! the master key checked before anything is sealed, unknown environment
//! variables refused, quiet broken pipes, and one pending key per algorithm.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::harness::*;

const OTHER_MASTER_KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80";

fn run(dir: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Output {
    let mut command = valet(dir);
    command.args(args);
    configure(&mut command);
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn kids(dir: &Path) -> Vec<String> {
    let out = run_ok({
        let mut c = valet(dir);
        c.args(["key", "list", "--json"]);
        c
    });
    stdout_json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn commands_other_than_serve_and_init_never_create_a_store() {
    let dir = temp_dir("no-store");
    for args in [
        &["user", "list"][..],
        &["client", "list"],
        &["audit"],
        &["key", "list"],
        &["key", "export"],
        &["key", "rotate", "--alg", "ES256"],
    ] {
        let out = run(&dir, args, |_| {});
        assert!(!out.status.success(), "{args:?}");
        let message = stderr(&out);
        assert!(
            message.contains("valet-data/valet.db") && message.contains("valet init"),
            "{args:?}: {message}"
        );
        assert!(!dir.join("valet-data").exists(), "{args:?} created a store");
    }
    // `init` creates it, with a master key and signing keys; a second run
    // changes nothing.
    let out = run_ok({
        let mut c = valet(&dir);
        c.arg("init");
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("Initialized"));
    assert!(dir.join("valet-data/master.key").is_file());
    let first = kids(&dir);
    assert_eq!(first.len(), 2);
    let out = run_ok({
        let mut c = valet(&dir);
        c.arg("init");
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("is ready"));
    assert_eq!(kids(&dir), first);
}

#[test]
fn commands_never_create_a_postgres_schema() {
    let Some(url) = test_database_url("the PostgreSQL store creation test") else {
        return;
    };
    let dir = temp_dir("no-pg-store");
    let schema = format!("valet_nostore_{}", std::process::id());
    let separator = if url.contains('?') { '&' } else { '?' };
    // Every connection's search_path is a schema that does not exist.
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let out = run(&dir, &["--database-url", &scoped, "user", "list"], |_| {});
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("no Valet store in the PostgreSQL database")
            && message.contains("valet init"),
        "{message}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let leftovers: i64 = runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations' AND table_schema = $1",
        )
        .bind(&schema)
        .fetch_one(&pool)
        .await
        .unwrap()
    });
    assert_eq!(leftovers, 0, "nothing was migrated");
}

#[test]
fn a_wrong_master_key_seals_nothing() {
    let dir = init_dir("wrong-key-cli");
    let before = kids(&dir);
    let out = run(&dir, &["key", "rotate", "--alg", "ES256"], |c| {
        c.env("VALET_MASTER_KEY", OTHER_MASTER_KEY);
    });
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("VALET_MASTER_KEY is not the master key of the store")
            && message.contains("Nothing was changed"),
        "{message}"
    );
    assert_eq!(kids(&dir), before, "no key was sealed with the wrong key");
    // The server refuses to start with it too.
    let port = free_port();
    let out = run(
        &dir,
        &["serve", "--bind", &format!("127.0.0.1:{port}")],
        |c| {
            c.env("VALET_MASTER_KEY", OTHER_MASTER_KEY);
        },
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("master key"), "{}", stderr(&out));
}

#[test]
fn a_missing_master_key_is_never_replaced_on_a_store_with_keys() {
    let dir = init_dir("missing-key");
    let key_file = dir.join("valet-data/master.key");
    std::fs::rename(&key_file, dir.join("master.key.backup")).unwrap();
    let before_out = run(&dir, &["key", "list", "--json"], |_| {});
    assert!(!before_out.status.success());
    let out = run(&dir, &["key", "rotate", "--alg", "RS256"], |_| {});
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("master.key does not exist")
            && message.contains("holds signing keys")
            && message.contains("VALET_MASTER_KEY"),
        "{message}"
    );
    assert!(!key_file.exists(), "no new master key was created");
    let port = free_port();
    let out = run(
        &dir,
        &["serve", "--bind", &format!("127.0.0.1:{port}")],
        |_| {},
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds signing keys"),
        "{}",
        stderr(&out)
    );
    assert!(!key_file.exists(), "serve created no master key either");
    // Restored, everything works again.
    std::fs::rename(dir.join("master.key.backup"), &key_file).unwrap();
    assert_eq!(kids(&dir).len(), 2);
}

#[test]
fn misspelled_environment_variables_are_refused() {
    let dir = init_dir("env-typo");
    let out = run(&dir, &["user", "list"], |c| {
        c.env("VALET_ACESS_TOKEN_TTL", "300");
    });
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("VALET_ACESS_TOKEN_TTL")
            && message.contains("did you mean VALET_ACCESS_TOKEN_TTL?"),
        "{message}"
    );
    // Documented variables and the test suite's own pass.
    let out = run(&dir, &["user", "list"], |c| {
        c.env("VALET_ACCESS_TOKEN_TTL", "300")
            .env("VALET_TEST_ANYTHING", "1")
            .env("VALET_REQUIRE_POSTGRES", "1");
    });
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let dir = init_dir("epipe");
    for args in [&["audit"][..], &["key", "export"], &["key", "list"]] {
        let mut child = valet(&dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command writes anything (`| head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let message = stderr(&out);
        assert!(!message.contains("panicked"), "{args:?}: {message}");
        assert!(message.is_empty(), "{args:?}: {message}");
        // 141 as a shell reports a SIGPIPE death; 0 if the output fit in the pipe
        // before the reader left.
        assert!(
            matches!(out.status.code(), Some(141 | 0)),
            "{args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn key_rotate_takes_one_algorithm_and_refuses_a_second_pending_key() {
    let dir = init_dir("rotate-one");
    let out = run(&dir, &["key", "rotate"], |_| {});
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--alg"), "{}", stderr(&out));
    run_ok({
        let mut c = valet(&dir);
        c.args(["key", "rotate", "--alg", "ES256"]);
        c
    });
    let after_first = kids(&dir);
    assert_eq!(after_first.len(), 3, "one new key, ES256 only");
    let out = run(&dir, &["key", "rotate", "--alg", "ES256"], |_| {});
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("is already pending") && message.contains("Nothing was written"),
        "{message}"
    );
    assert_eq!(kids(&dir), after_first);
    run_ok({
        let mut c = valet(&dir);
        c.args(["key", "rotate", "--alg", "RS256"]);
        c
    });
    assert_eq!(kids(&dir).len(), 4);
}

#[test]
fn key_export_prints_the_served_jwks_without_private_members() {
    let (dir, server) = serve_fresh("export");
    run_ok({
        let mut c = valet(&dir);
        c.args(["key", "rotate", "--alg", "RS256"]);
        c
    });
    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["key", "export"]);
        c
    });
    let exported = stdout_json(&out);
    assert_eq!(exported["keys"].as_array().unwrap().len(), 3);
    eventually("the server to publish the new key", || {
        serde_json::from_str::<Value>(&server.get("/jwks.json").body).unwrap() == exported
    });
    for key in exported["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "{private} in {key}");
        }
    }
}

#[test]
fn user_unlock_is_recorded() {
    let dir = init_dir("unlock");
    let mut create = valet(&dir);
    create
        .args(["user", "create", "--username", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = create.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"correct horse battery staple").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["user", "unlock", "alice"]);
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unlocked user alice"));
    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["audit", "--json"]);
        c
    });
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"user.unlocked\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(&dir, &["user", "unlock", "nobody"], |_| {});
    assert!(!out.status.success());
}

#[test]
fn bind_accepts_a_host_name() {
    let dir = temp_dir("bind-localhost");
    let port = free_port();
    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("localhost:{port}")]);
    let server = Server::start(command, port, dir.join("serve.log"));
    let discovery: Value =
        serde_json::from_str(&server.get("/.well-known/openid-configuration").body).unwrap();
    assert_eq!(discovery["issuer"], format!("http://localhost:{port}"));
}

/// At a terminal the password prompt does not echo what is typed. `script` gives
/// the command a pseudo-terminal; what it prints is what a person would see.
#[test]
fn the_password_prompt_does_not_echo() {
    let dir = init_dir("no-echo");
    let mut command = Command::new("script");
    command
        .current_dir(&dir)
        .args([
            "-qec",
            &format!(
                "{} user create --username bob --password-stdin",
                env!("CARGO_BIN_EXE_valet")
            ),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VALET_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .spawn()
        .expect("`script` (util-linux) runs the test");
    // Typed once the prompt is up (a terminal echoes input as it arrives).
    std::thread::sleep(std::time::Duration::from_secs(2));
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"visible-secret-123\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("Created user bob"), "{screen}");
    assert!(screen.contains("not shown as you type"), "{screen}");
    assert!(!screen.contains("visible-secret-123"), "{screen}");
}

#[test]
fn a_host_that_merely_starts_with_127_is_not_loopback() {
    let dir = temp_dir("not-loopback");
    for issuer in [
        "http://127.evil.example:8080",
        "http://127.0.0.1.evil.example",
    ] {
        let port = free_port();
        let out = run(
            &dir,
            &[
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--issuer",
                issuer,
            ],
            |_| {},
        );
        assert!(!out.status.success(), "{issuer}");
        let message = stderr(&out);
        assert!(
            message.contains("setting `issuer`") && message.contains("loopback"),
            "{issuer}: {message}"
        );
    }
    assert!(
        !dir.join("valet-data").exists(),
        "refused before creating anything"
    );
}
