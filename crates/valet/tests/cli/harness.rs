//! What the CLI tests need beyond the shared helpers of `valet-test-support`:
//! the `valet` binary itself (its path is known only here, through
//! `CARGO_BIN_EXE_valet`) and the CLI commands the tests run on a store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use valet_test_support::cli::*;

/// A fresh directory with a store in it (`valet init`): every command but
/// `serve` and `init` needs one.
pub fn init_dir(label: &str) -> PathBuf {
    let dir = temp_dir(label);
    run_ok({
        let mut c = valet(&dir);
        c.arg("init");
        c
    });
    dir
}

/// `valet serve` with its defaults on a fresh data dir named after `label`, on a
/// free port: the dir (for CLI commands on the same store) and the running server.
pub fn serve_fresh(label: &str) -> (PathBuf, Server) {
    let dir = temp_dir(label);
    let port = free_port();
    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    let server = Server::start(command, port, dir.join("serve.log"));
    (dir, server)
}

/// `valet` with a clean environment: no `VALET_*` from the caller leaks in.
pub fn valet(cwd: &Path) -> Command {
    clean_command(env!("CARGO_BIN_EXE_valet"), cwd)
}

/// Creates a client_credentials client through the CLI; returns (id, secret).
pub fn create_service_client(cwd: &Path, args: &[&str]) -> (String, String) {
    let mut command = valet(cwd);
    command.args(args).args([
        "client",
        "create",
        "--name",
        "billing",
        "--audience",
        "https://api.example.test",
        "--scope",
        "read",
        "--json",
    ]);
    let out = stdout_json(&run_ok(command));
    (
        out["client_id"].as_str().unwrap().to_owned(),
        out["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Creates a user through the CLI (password on standard input); returns its id.
pub fn create_user(dir: &Path, username: &str, email: &str, password: &str) -> String {
    let mut command = valet(dir);
    command
        .args(["user", "create", "--username", username, "--email", email])
        .args(["--email-verified", "--password-stdin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out: Output = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)["user_id"].as_str().unwrap().to_owned()
}

/// Creates a confidential web client through the CLI; returns (id, secret).
pub fn create_web_client(dir: &Path, name: &str, redirect_uri: &str) -> (String, String) {
    let mut command = valet(dir);
    command.args([
        "client",
        "create",
        "--name",
        name,
        "--redirect-uri",
        redirect_uri,
        "--json",
    ]);
    let out = stdout_json(&run_ok(command));
    (
        out["client_id"].as_str().unwrap().to_owned(),
        out["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Creates a user through the CLI with the `global` options (such as
/// `--database-url`); returns its id.
pub fn create_user_with(
    mut command: Command,
    global: &[&str],
    username: &str,
    password: &str,
) -> String {
    command
        .args(global)
        .args(["user", "create", "--username", username])
        .args(["--email", &format!("{username}@example.test")])
        .args(["--email-verified", "--password-stdin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)["user_id"].as_str().unwrap().to_owned()
}

/// `valet client create ARGS --json` with the `global` options; returns (id, secret).
pub fn create_client_with(
    mut command: Command,
    global: &[&str],
    args: &[&str],
) -> (String, String) {
    command
        .args(global)
        .args(["client", "create"])
        .args(args)
        .arg("--json");
    let out = stdout_json(&run_ok(command));
    (
        out["client_id"].as_str().unwrap().to_owned(),
        out["client_secret"].as_str().unwrap().to_owned(),
    )
}
