//! Mail through a real SMTP server (aiosmtpd, `smtp_sink.py`): a password reset
//! requested while the server is down is queued in the outbox, survives a
//! SIGKILL of `valet serve`, and arrives exactly once after the restart, once
//! the SMTP server is up. Skipped loudly without aiosmtpd, unless
//! `VALET_REQUIRE_AIOSMTPD` is set (CI).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;
use crate::load::PASSWORD;

/// The aiosmtpd sink as a process, writing each message into `dir`.
pub struct SmtpSink {
    child: Child,
    pub dir: PathBuf,
}

impl SmtpSink {
    /// Whether aiosmtpd is installed; `false` after a loud skip.
    pub fn available(what: &str) -> bool {
        let found = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            assert!(
                std::env::var_os("VALET_REQUIRE_AIOSMTPD").is_none(),
                "VALET_REQUIRE_AIOSMTPD is set but python3 cannot import aiosmtpd"
            );
            skip(&format!(
                "aiosmtpd is not installed (pip install aiosmtpd); {what} did not run"
            ));
        }
        found
    }

    pub fn start(port: u16, dir: &Path) -> SmtpSink {
        std::fs::create_dir_all(dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP sink did not start");
        SmtpSink {
            child,
            dir: dir.to_owned(),
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token of the reset link in a message (quoted-printable undone: soft
/// line breaks, and `=3D` for `=`; the token itself is base64url).
pub fn reset_token(message: &str) -> String {
    let joined = message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = joined.find("?token=").expect("a link") + "?token=".len();
    joined[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn serve(dir: &Path, port: u16, smtp_port: u16, round: usize) -> Server {
    let mut command = valet(dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("VALET_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("VALET_MAIL_FROM", "Valet <valet@example.test>")
        .env("VALET_PASSWORD_RESET", "true");
    Server::start(command, port, dir.join(format!("serve-{round}.log")))
}

/// Asks for a reset of `login` through the pages, as a browser would.
pub fn ask_reset(port: u16, login: &str) -> Reply {
    ask_reset_in(port, login, "")
}

/// As [`ask_reset`], from a browser whose `Accept-Language` is `language`.
pub fn ask_reset_in(port: u16, login: &str, language: &str) -> Reply {
    let mut jar = CookieJar::default();
    let headers = [("Accept-Language", language.to_owned())];
    let page = jar.send_with(port, "GET", "/reset", &headers, "");
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form_field(&page.body, "csrf").unwrap();
    jar.send_with(
        port,
        "POST",
        "/reset",
        &headers,
        &format!("csrf={csrf}&login={}", encode(login)),
    )
}

/// The subject and the text of a message as received, MIME undone by
/// Python's `email` package (encoded words, quoted-printable, base64).
fn decoded(message: &str) -> (String, String) {
    let script = "import email, email.policy, sys\n\
                  m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)\n\
                  sys.stdout.write(str(m['subject']) + '\\n' + m.get_content())";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), message.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the message does not parse: {message}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (subject, body) = text.split_once('\n').unwrap();
    (subject.to_owned(), body.to_owned())
}

#[test]
fn a_mail_queued_while_smtp_is_down_survives_a_crash_and_arrives_once() {
    if !SmtpSink::available("the mail outbox restart test") {
        return;
    }
    let dir = temp_dir("mail-outbox");
    let port = free_port();
    let smtp_port = free_port();
    let mut server = serve(&dir, port, smtp_port, 0);
    create_user(&dir, "mailed-alice", "alice@example.test", PASSWORD);

    // The SMTP server is down: the request is answered, the mail waits.
    let asked = ask_reset(port, "mailed-alice");
    assert_eq!(asked.status, 200, "{}", asked.body);
    std::thread::sleep(Duration::from_millis(500));
    server.sigkill();

    let sink = SmtpSink::start(smtp_port, &dir.join("inbox"));
    let mut server = serve(&dir, port, smtp_port, 1);
    // The first attempt failed (connection refused): the retry comes after
    // the first backoff, 30 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(75);
    while sink.messages().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the queued mail never arrived"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Give a duplicate every chance to show up.
    std::thread::sleep(Duration::from_secs(7));
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "exactly once: {messages:?}");
    assert!(messages[0].contains("alice@example.test"));
    let token = reset_token(&messages[0]);
    assert_eq!(token.len(), 43, "{}", messages[0]);
    // The link works.
    let mut jar = CookieJar::default();
    let page = jar.send(port, "GET", &format!("/reset/confirm?token={token}"), "");
    assert_eq!(page.status, 200, "{}", page.body);
    // Nothing secret reached the log.
    let log = server.log_text();
    assert!(!log.contains(&token), "the link is not logged");
    server.terminate(Duration::from_secs(10));
}

/// `smtp_url = "log"`: start-up says loudly that mail is only logged, and the
/// message, link included, is in the log (the one place it may be).
#[test]
fn the_log_mailer_says_so_and_logs_the_message() {
    let dir = temp_dir("mail-log");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("VALET_SMTP_URL", "log")
        .env("VALET_PASSWORD_RESET", "true");
    let server = Server::start(command, port, dir.join("serve.log"));
    create_user(&dir, "logged-alice", "alice@example.test", PASSWORD);
    assert!(
        server.log_text().contains("mail is NOT sent"),
        "{}",
        server.log_text()
    );
    assert_eq!(ask_reset(port, "logged-alice").status, 200);
    eventually("the logged mail", || server.log_text().contains("?token="));
    let log = server.log_text();
    assert!(log.contains("alice@example.test"), "{log}");
    assert!(log.contains("Reset your password"), "{log}");
}

/// `valet user invite EMAIL` against a running server's store: the server
/// mails (here: logs) the invitation, whose link opens the registration form.
#[test]
fn valet_user_invite_queues_an_invitation_the_server_sends() {
    let dir = temp_dir("mail-invite");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("VALET_SMTP_URL", "log")
        .env("VALET_REGISTRATION", "invite");
    let server = Server::start(command, port, dir.join("serve.log"));
    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["user", "invite", "grace@example.test"]);
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("Invited grace@example.test"));
    eventually("the invitation", || server.log_text().contains("?invite="));
    let log = server.log_text();
    let start = log.find("?invite=").unwrap() + "?invite=".len();
    let token: String = log[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let mut jar = CookieJar::default();
    let page = jar.send(port, "GET", &format!("/register?invite={token}"), "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("grace@example.test"));
    let refused = valet(&dir)
        .args(["user", "invite", "not-an-address"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("email"));
}

/// The mail is written in the language of the request that caused it (here
/// the browser's `Accept-Language`), though the sender writes it later: a
/// German reset request gets a German mail, an English one an English mail,
/// and both links work.
#[test]
fn a_reset_mail_speaks_the_language_of_its_request() {
    if !SmtpSink::available("the mail language test") {
        return;
    }
    let dir = temp_dir("mail-language");
    let port = free_port();
    let smtp_port = free_port();
    let sink = SmtpSink::start(smtp_port, &dir.join("inbox"));
    let server = serve(&dir, port, smtp_port, 0);
    create_user(&dir, "german-anna", "anna@example.test", PASSWORD);
    create_user(&dir, "english-bob", "bob@example.test", PASSWORD);

    let cases = [
        ("german-anna", "de-DE, en;q=0.5", "anna@example.test"),
        ("english-bob", "en", "bob@example.test"),
    ];
    for (round, (login, language, _)) in cases.iter().enumerate() {
        let asked = ask_reset_in(port, login, language);
        assert_eq!(asked.status, 200, "{}", asked.body);
        eventually("the reset mail", || sink.messages().len() > round);
    }
    let messages = sink.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let mail_to = |address: &str| {
        messages
            .iter()
            .find(|m| m.contains(&format!("X-Envelope-To: {address}")))
            .unwrap_or_else(|| panic!("no mail to {address}: {messages:?}"))
    };

    let (subject, body) = decoded(mail_to("anna@example.test"));
    assert_eq!(subject, "Passwort zurücksetzen");
    assert!(body.starts_with("Hallo "), "{body}");
    assert!(body.contains("„german-anna“"), "{body}");
    assert!(!body.contains("Hello"), "no English: {body}");

    let (subject, body) = decoded(mail_to("bob@example.test"));
    assert_eq!(subject, "Reset your password");
    assert!(
        body.starts_with("Hello ") && body.contains("\"english-bob\""),
        "{body}"
    );

    // Both links work, and open the page in the browser's own language.
    for (_, _, address) in cases {
        let token = reset_token(mail_to(address));
        assert_eq!(token.len(), 43, "{}", mail_to(address));
        let page =
            CookieJar::default().send(port, "GET", &format!("/reset/confirm?token={token}"), "");
        assert_eq!(page.status, 200, "{}", page.body);
    }
    drop(server);
}
