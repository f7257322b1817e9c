//! Headless Chromium driven over the W3C WebDriver protocol by `chromedriver`,
//! and a listener standing in for a client's redirect URI: what the browser
//! end-to-end tests share.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them [`browser_missing`]
//! tells the test to skip, unless `VALET_REQUIRE_BROWSER` is set (as in CI),
//! where it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::harness::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// True when Chromium or chromedriver is missing and the test should return
/// (having printed `SKIPPED:`); panics instead when `VALET_REQUIRE_BROWSER` is set.
pub fn browser_missing(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return false;
    }
    let reason = format!(
        "{test}: {} missing (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var_os("VALET_REQUIRE_BROWSER").is_some() {
        panic!("{reason}, and VALET_REQUIRE_BROWSER is set");
    }
    skip(&reason);
    true
}

/// The client's redirect URI: answers the first `GET /callback…` with 200 "ok"
/// and reports its request line, then stops listening.
pub struct CallbackListener {
    pub port: u16,
    request_lines: mpsc::Receiver<String>,
}

impl CallbackListener {
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// The same on `port` (0: any), e.g. the port of a listener that answered
    /// already, for a second flow to the same redirect URI.
    pub fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, request_lines) = mpsc::channel();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // A connection the browser opened ahead and never used
                        // reads as empty; only the callback request ends the loop.
                        if let Some(line) = answer(stream) {
                            let _ = sender.send(line);
                            return;
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self {
            port,
            request_lines,
        }
    }

    pub fn request_line(&self, timeout: Duration) -> String {
        self.request_lines
            .recv_timeout(timeout)
            .expect("the browser reached the callback")
    }
}

/// Reads one request's head; answers a callback with "ok", anything else with 404.
fn answer(stream: TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let request_line = request_line.trim_end().to_owned();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let mut stream = reader.into_inner();
    if request_line.starts_with("GET /callback") {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        );
        Some(request_line)
    } else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        None
    }
}

/// A WebDriver element reference (W3C WebDriver §12.1).
pub struct Element(String);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` and the Chromium session it runs. Dropping it, also on a panic,
/// ends the session and kills chromedriver and every process below it.
pub struct Browser {
    driver: Child,
    port: u16,
    session: Option<String>,
    profile: PathBuf,
}

impl Browser {
    pub fn start(dir: &Path) -> Browser {
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let mut browser = Browser {
            driver,
            port,
            session: None,
            profile,
        };
        browser.wait_ready();
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({
                "capabilities": {
                    "alwaysMatch": {
                        "goog:chromeOptions": {
                            "binary": CHROMIUM,
                            "args": [
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--no-first-run",
                                "--window-size=800,720",
                                format!("--user-data-dir={}", browser.profile.display()),
                            ],
                        },
                    },
                },
            })),
        );
        let session = created["sessionId"].as_str().unwrap().to_owned();
        browser.session = Some(session);
        // Elements are waited for up to 20 s: a click may still be loading the next page.
        browser.session_call(
            "POST",
            "/timeouts",
            Some(json!({ "implicit": 20_000, "pageLoad": 60_000 })),
        );
        browser
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.driver.try_wait().unwrap() {
                panic!("chromedriver exited with {status}");
            }
            if let Ok(reply) = webdriver_http(self.port, "GET", "/status", None, SHORT)
                && reply["value"]["ready"] == true
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("chromedriver did not become ready");
    }

    /// A WebDriver command; returns its `value`, panicking on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = webdriver_http(self.port, method, path, body.as_ref(), LONG)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        if reply["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    pub fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let session = self.session.as_deref().expect("a session");
        self.call(method, &format!("/session/{session}{path}"), body)
    }

    pub fn navigate(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn find(&self, css: &str) -> Element {
        let found = self.session_call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        let id = found[ELEMENT_KEY].as_str();
        Element(id.unwrap_or_else(|| panic!("{css}: {found}")).to_owned())
    }

    pub fn send_keys(&self, element: &Element, text: &str) {
        self.session_call(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, element: &Element) {
        self.session_call(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        );
    }

    pub fn text(&self, element: &Element) -> String {
        self.session_call("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The visible page as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.session_call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap()
    }

    /// With `VALET_UPDATE_SCREENSHOTS=1`, saves the visible page as
    /// `docs/screenshots/<name>.png` for the README's tour.
    pub fn save_screenshot_if_asked(&self, name: &str) {
        if std::env::var("VALET_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        // The top of the page, without a focus ring scrolled into view.
        self.execute(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return null;",
            serde_json::json!([]),
        );
        let screenshot = self.screenshot();
        assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../docs/screenshots/{name}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &screenshot).unwrap();
    }

    /// Polls the current URL until it starts with `prefix`; returns it.
    pub fn wait_for_url(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url();
            if url.starts_with(prefix) {
                return url;
            }
            assert!(Instant::now() < deadline, "still at {url}, not {prefix}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns (W3C WebDriver §15.2.1).
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Adds a virtual authenticator (W3C WebAuthn Level 2 §11.3): CTAP2 over
    /// the internal transport, with resident keys and user verification that
    /// succeeds, as a platform authenticator unlocked by its user. Returns its id.
    pub fn add_virtual_authenticator(&self) -> String {
        let id = self.session_call(
            "POST",
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            })),
        );
        id.as_str().unwrap().to_owned()
    }

    /// The credentials a virtual authenticator holds (§11.7).
    pub fn virtual_credentials(&self, authenticator: &str) -> Value {
        self.session_call(
            "GET",
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
    }

    /// Deletes every cookie of the current page's site: the browser is signed out.
    pub fn delete_cookies(&self) {
        self.session_call("DELETE", "/cookie", None);
    }

    /// Polls the page's text until it contains `text`.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let body = self.execute("return document.body.innerText;", json!([]));
            if body.as_str().is_some_and(|body| body.contains(text)) {
                return;
            }
            assert!(Instant::now() < deadline, "no {text:?} in {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ends the session: Chromium quits.
    pub fn quit(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = webdriver_http(
                self.port,
                "DELETE",
                &format!("/session/{session}"),
                None,
                SHORT,
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.quit();
        // Whatever is left (a Chromium that did not quit, its helpers): every
        // process below chromedriver, then chromedriver itself.
        let mut pids = descendants(self.driver.id());
        pids.push(self.driver.id());
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The processes below `root`, from `/proc` (children before grandchildren).
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid …; comm may hold spaces and parentheses.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            Some((pid, ppid.parse().ok()?))
        })
        .collect();
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

const SHORT: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(120);

/// One WebDriver request over a fresh connection. chromedriver says
/// `Connection: close` but keeps the socket open, so the body is read by its
/// Content-Length.
fn webdriver_http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> std::io::Result<Value> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    let mut reader = BufReader::new(stream);
    write!(
        reader.get_mut(),
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("the reply ended in its head"));
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("no Content-Length"))?;
    let mut json = vec![0; length];
    reader.read_exact(&mut json)?;
    serde_json::from_slice(&json).map_err(std::io::Error::other)
}
