use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

pub fn temp_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "valet-cli-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `valet` with a clean environment: no `VALET_*` from the caller leaks in.
pub fn valet(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_valet"));
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
        let auth = basic_auth.map(|(id, secret)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            )
        });
        let mut headers = vec![(
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        http(self.port, "POST", path, &headers, body).unwrap()
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

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// How a connection ended, seen from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it (FIN).
    Closed,
    /// The server reset it (RST), e.g. closing with request bytes unread.
    Reset,
    /// Still open when the client stopped waiting.
    Open,
}

/// Reads until the server closes the connection or `wait` passes.
pub fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, Ending) {
    let deadline = Instant::now() + wait;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (raw, Ending::Open);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (raw, Ending::Closed),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (raw, Ending::Open);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (raw, Ending::Reset),
            Err(e) => panic!("read: {e}"),
        }
    }
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

/// Polls `check` until it holds, for what the server does in the background (its
/// key reload every 10 s, its audit flush every second); fails after 25 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(25);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Written past the test harness's output capture, so a skip is seen on every run.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

// Helpers for flows across nodes and under crashes (cluster.rs, durability.rs).

impl Server {
    /// SIGKILL, as a crash or `kill -KILL` would: no shutdown code runs.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VALET_TEST_DATABASE_URL`, or `None` after a loud skip; panics instead when
/// `VALET_REQUIRE_POSTGRES` is set (CI).
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

/// A uniformly random number below `n` (`n` > 0), from the OS generator.
pub fn random_below(n: usize) -> usize {
    let bytes = valet_jose::random_bytes::<8>().unwrap();
    (u64::from_le_bytes(bytes) % n as u64) as usize
}

/// A form POST to the node on `port`; an error when the node cannot be reached or
/// the answer was cut off (the caller decides what that means).
pub fn try_post_form(
    port: u16,
    path: &str,
    basic_auth: Option<(&str, &str)>,
    body: &str,
) -> std::io::Result<Reply> {
    let mut headers = vec![(
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    if let Some((id, secret)) = basic_auth {
        headers.push((
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            ),
        ));
    }
    http(port, "POST", path, &headers, body)
}

/// A form body, percent-encoded.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(reply: &Reply) -> std::collections::HashMap<String, String> {
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", reply.status, reply.body));
    let query = location.split_once('?').map_or("", |(_, q)| q);
    openidconnect::url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1, §4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn generate() -> Self {
        let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
        let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// A browser's cookies by name. Cookies do not depend on the port (RFC 6265 §8.5),
/// so one jar follows a flow from node to node on one host, as through a load
/// balancer.
#[derive(Default, Clone)]
pub struct CookieJar(pub std::collections::HashMap<String, String>);

impl CookieJar {
    pub fn send(&mut self, port: u16, method: &str, path: &str, body: &str) -> Reply {
        let mut headers = Vec::new();
        if !self.0.is_empty() {
            let cookies: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.push(("Cookie", cookies.join("; ")));
        }
        if method == "POST" {
            headers.push((
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ));
        }
        let reply = http(port, method, path, &headers, body).unwrap();
        for (header, set_cookie) in &reply.headers {
            if !header.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = set_cookie.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap();
            let deleted = set_cookie
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if value.is_empty() || deleted {
                self.0.remove(name.trim());
            } else {
                self.0
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        reply
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
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
