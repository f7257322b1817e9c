//! A minimal HTTP/1.1 client for a server running as a process (one request per
//! connection, no TLS), and a cookie jar over it.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

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
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(reply: &Reply) -> HashMap<String, String> {
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", reply.status, reply.body));
    let query = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A browser's cookies by name. Cookies do not depend on the port (RFC 6265 §8.5),
/// so one jar follows a flow from node to node on one host, as through a load
/// balancer.
#[derive(Default, Clone)]
pub struct CookieJar(pub HashMap<String, String>);

impl CookieJar {
    pub fn send(&mut self, port: u16, method: &str, path: &str, body: &str) -> Reply {
        self.send_with(port, method, path, &[], body)
    }

    /// As [`CookieJar::send`], with `extra` headers (say, `Accept-Language`).
    pub fn send_with(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        extra: &[(&'static str, String)],
        body: &str,
    ) -> Reply {
        let mut headers = extra.to_vec();
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
