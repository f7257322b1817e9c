//! A binary under test as a process: a clean command, a running server killed
//! when dropped, commands that must succeed, waiting for background work.
//!
//! The binary's path is passed in: `env!("CARGO_BIN_EXE_valet")` only works in the
//! tests of the crate that builds it.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{Reply, http, try_post_form};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary at `program` run in `cwd` with a clean environment: no `VALET_*`
/// from the caller leaks in, and it logs at `info`.
pub fn clean_command(program: impl AsRef<OsStr>, cwd: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(cwd);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VALET_") {
            command.env_remove(name);
        }
    }
    command.env("VALET_LOG", "info");
    command
}

/// Runs a CLI command and returns its output, asserting success.
pub fn run_ok(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A running `valet serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    pub fn start(mut command: Command, port: u16, log: PathBuf) -> Server {
        let log_file = std::fs::File::create(&log).unwrap();
        command
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null());
        let child = command.spawn().unwrap();
        let mut server = Server { child, port, log };
        server.wait_ready();
        server
    }

    /// Starts a process that has no /readyz (the proxy): ready once it answers at all.
    pub fn start_unready(mut command: Command, port: u16, log: PathBuf) -> Server {
        let log_file = std::fs::File::create(&log).unwrap();
        command
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .stdin(Stdio::null());
        let mut server = Server {
            child: command.spawn().unwrap(),
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(port, "GET", "/", &[], "").is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("exited early with {status}: {}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no answer: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("valet exited early with {status}: {}", self.log_text());
            }
            if http(self.port, "GET", "/readyz", &[], "").is_ok_and(|reply| reply.status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("valet did not become ready: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Reply {
        http(self.port, "GET", path, &[], "").unwrap()
    }

    pub fn post_form(&self, path: &str, basic_auth: Option<(&str, &str)>, body: &str) -> Reply {
        try_post_form(self.port, path, basic_auth, body).unwrap()
    }

    pub fn token(&self, id: &str, secret: &str) -> String {
        let reply = self.post_form(
            "/token",
            Some((id, secret)),
            "grant_type=client_credentials",
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub fn introspect(&self, id: &str, secret: &str, token: &str) -> Value {
        let reply = self.post_form("/introspect", Some((id, secret)), &format!("token={token}"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// SIGKILL, as a crash or `kill -KILL` would: no shutdown code runs.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`"TERM"`, `"INT"`) and returns at once.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// SIGTERM, then the exit status within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds, for what the server does in the background (its
/// key reload every 10 s, its audit flush every second); fails after 25 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(25);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A uniformly random number below `n` (`n` > 0), from the OS generator.
pub fn random_below(n: usize) -> usize {
    let bytes = valet_jose::random_bytes::<8>().unwrap();
    (u64::from_le_bytes(bytes) % n as u64) as usize
}
