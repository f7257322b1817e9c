//! The Redis session backend: a minimal RESP2 client over one TCP connection
//! (GET, SET EX, DEL, SADD, EXPIRE, SMEMBERS, SELECT, AUTH), so several gateway
//! processes share sessions without another dependency tree. No TLS: run Redis
//! on a private network or loopback.

use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Bulk replies larger than this are refused (a session record is a few KiB).
const MAX_BULK: usize = 1 << 20;
/// How long one command may take, connection included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Redis {
    address: String,
    /// AUTH password and SELECT database, sent on every new connection.
    password: Option<String>,
    database: Option<u32>,
    /// Prepended to every key.
    prefix: String,
    connection: Mutex<Option<BufReader<TcpStream>>>,
}

/// A RESP2 reply.
#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Redis {
    /// `redis://[:password@]host[:port][/db]`.
    pub fn parse(url: &str, prefix: &str) -> Result<Redis, String> {
        let bad = |why: &str| format!("--session-store {url}: {why}");
        let parsed = Url::parse(url).map_err(|error| bad(&error.to_string()))?;
        if parsed.scheme() != "redis" {
            return Err(bad("must be memory or redis://host[:port][/db]"));
        }
        let host = parsed.host_str().ok_or_else(|| bad("names no host"))?;
        let port = parsed.port().unwrap_or(6379);
        let database = match parsed.path().trim_start_matches('/') {
            "" => None,
            db => Some(
                db.parse()
                    .map_err(|_| bad("the path must be a database number"))?,
            ),
        };
        Ok(Redis {
            address: format!("{host}:{port}"),
            password: parsed.password().map(str::to_owned),
            database,
            prefix: prefix.to_owned(),
            connection: Mutex::new(None),
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.command(&[b"GET", self.key(key).as_bytes()]).await? {
            Reply::Bulk(value) => Ok(value),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn put(
        &self,
        key: &str,
        value: &[u8],
        tags: &[String],
        ttl: Duration,
    ) -> Result<(), String> {
        let seconds = ttl.as_secs().max(1).to_string();
        let key = self.key(key);
        self.command(&[b"SET", key.as_bytes(), value, b"EX", seconds.as_bytes()])
            .await?;
        for tag in tags {
            let tag = self.key(&format!("tag:{tag}"));
            self.command(&[b"SADD", tag.as_bytes(), key.as_bytes()])
                .await?;
            self.command(&[b"EXPIRE", tag.as_bytes(), seconds.as_bytes()])
                .await?;
        }
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), String> {
        self.command(&[b"DEL", self.key(key).as_bytes()]).await?;
        Ok(())
    }

    pub async fn delete_tagged(&self, tag: &str) -> Result<usize, String> {
        let tag = self.key(&format!("tag:{tag}"));
        let Reply::Array(members) = self.command(&[b"SMEMBERS", tag.as_bytes()]).await? else {
            return Err("SMEMBERS did not answer an array".into());
        };
        let mut deleted = 0;
        for member in members {
            if let Reply::Bulk(Some(key)) = member
                && let Reply::Integer(1) = self.command(&[b"DEL", &key]).await?
            {
                deleted += 1;
            }
        }
        self.command(&[b"DEL", tag.as_bytes()]).await?;
        Ok(deleted)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Sends one command and reads its reply, (re)connecting first if needed; a
    /// failed exchange drops the connection so the next command starts clean.
    async fn command(&self, parts: &[&[u8]]) -> Result<Reply, String> {
        let mut connection = self.connection.lock().await;
        let exchange = async {
            if connection.is_none() {
                *connection = Some(self.connect().await?);
            }
            let Some(stream) = connection.as_mut() else {
                return Err("no connection".to_owned());
            };
            exchange(stream, parts).await
        };
        let result = tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        if result.is_err() {
            *connection = None;
        }
        result.map_err(|error| format!("redis {}: {error}", self.address))
    }

    async fn connect(&self) -> Result<BufReader<TcpStream>, String> {
        let stream = TcpStream::connect(&self.address)
            .await
            .map_err(|error| error.to_string())?;
        let mut stream = BufReader::new(stream);
        if let Some(password) = &self.password {
            exchange(&mut stream, &[b"AUTH", password.as_bytes()]).await?;
        }
        if let Some(database) = self.database {
            exchange(&mut stream, &[b"SELECT", database.to_string().as_bytes()]).await?;
        }
        Ok(stream)
    }
}

async fn exchange(stream: &mut BufReader<TcpStream>, parts: &[&[u8]]) -> Result<Reply, String> {
    let mut request = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        request.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        request.extend_from_slice(part);
        request.extend_from_slice(b"\r\n");
    }
    stream
        .get_mut()
        .write_all(&request)
        .await
        .map_err(|error| error.to_string())?;
    read_reply(stream, 0).await
}

/// Reads one reply; arrays nest at most two levels (none of our commands nests).
async fn read_reply(stream: &mut BufReader<TcpStream>, depth: u8) -> Result<Reply, String> {
    let line = read_line(stream).await?;
    let (kind, rest) = line.split_at_checked(1).ok_or("an empty reply line")?;
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| format!("bad length {rest:?}"))
    };
    match kind {
        "+" => Ok(Reply::Simple(rest.to_owned())),
        "-" => Err(format!("error reply: {rest}")),
        ":" => Ok(Reply::Integer(number()?)),
        "$" => {
            let Ok(len) = usize::try_from(number()?) else {
                return Ok(Reply::Bulk(None));
            };
            if len > MAX_BULK {
                return Err(format!("a {len}-byte value is too large"));
            }
            let mut value = vec![0; len + 2];
            stream
                .read_exact(&mut value)
                .await
                .map_err(|error| error.to_string())?;
            value.truncate(len);
            Ok(Reply::Bulk(Some(value)))
        }
        "*" if depth < 2 => {
            let count = usize::try_from(number()?).unwrap_or(0);
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                items.push(Box::pin(read_reply(stream, depth + 1)).await?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(format!("unexpected reply type {kind:?}")),
    }
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = Vec::new();
    let read = (&mut *stream)
        .take(MAX_BULK as u64)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|error| error.to_string())?;
    if read == 0 {
        return Err("connection closed".into());
    }
    let line = String::from_utf8(line).map_err(|_| "a reply line is not UTF-8".to_owned())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn unexpected(reply: &Reply) -> String {
    format!("unexpected reply {reply:?}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn store_urls() {
        let redis = Redis::parse("redis://:pw@cache.internal:6380/2", "p:").unwrap();
        assert_eq!(redis.address, "cache.internal:6380");
        assert_eq!(redis.password.as_deref(), Some("pw"));
        assert_eq!(redis.database, Some(2));
        assert_eq!(redis.key("k"), "p:k");
        let plain = Redis::parse("redis://127.0.0.1", "").unwrap();
        assert_eq!(plain.address, "127.0.0.1:6379");
        assert_eq!(plain.database, None);
        for bad in ["rediss://x", "http://x", "redis://x/db", "redis:///0"] {
            assert!(Redis::parse(bad, "").is_err(), "{bad}");
        }
    }
}
