//! Mail transports and the task that empties the outbox.
//!
//! `smtp_url` picks the transport:
//! - `smtp://host[:port]`: plain SMTP (port 25 by default), for a relay or a
//!   development sink on this machine; refused for any other host, since
//!   credentials and links would cross the network in clear.
//! - `smtp+starttls://host[:port]`: STARTTLS required (port 587 by default);
//!   the message is not sent if the server does not offer it.
//! - `smtps://host[:port]`: TLS from the first byte (port 465 by default).
//! - `log`: nothing is sent; each message, links included, is written to the
//!   log. For development only, and said loudly at start.
//!
//! Credentials go in the URL's userinfo (`smtps://user:pass@host`,
//! percent-encoded), are used for SMTP AUTH only over TLS, and are never
//! logged: [`Mailer`]'s `Debug` shows the host only. Certificates are checked
//! against the platform's roots (rustls with aws-lc-rs, as everywhere else).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Email, Tokio1Executor};
use percent_encoding::percent_decode_str;
use tokio::sync::watch;
use valet_core::AuthorizationServer;
use valet_core::mail::{MailTransport, Message, SendError};

/// How often the outbox is looked at for mail queued on other nodes and for
/// retries that came due; mail queued on this node is sent at once.
pub const MAIL_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The longest one SMTP command may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes.
pub enum Mailer {
    /// Written to the log, not sent (`smtp_url = "log"`).
    Log,
    Smtp {
        /// Boxed: it is large, and the log mailer has nothing.
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        /// For `Debug` and logs: scheme, host and port, no credentials.
        endpoint: String,
    },
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Log => f.write_str("Mailer::Log"),
            Self::Smtp { endpoint, .. } => write!(f, "Mailer::Smtp({endpoint})"),
        }
    }
}

impl Mailer {
    /// The transport `smtp_url` names (see the module docs). The error names
    /// the setting and never repeats the URL (it may hold a password).
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url == "log" {
            return Ok(Self::Log);
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("smtp_url must be `log` or smtp://, smtp+starttls:// or smtps://HOST[:PORT]")?;
        let (userinfo, hostport) = match rest.trim_end_matches('/').rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest.trim_end_matches('/')),
        };
        let (host, port) = split_host_port(hostport)?;
        let (default_port, tls) = match scheme {
            "smtp" => {
                if !is_loopback(&host) {
                    return Err(format!(
                        "smtp_url: plain smtp:// is for this machine only ({host} is not a loopback address); use smtp+starttls:// or smtps://"
                    ));
                }
                (25, None)
            }
            "smtp+starttls" => (587, Some(false)),
            "smtps" => (465, Some(true)),
            other => {
                return Err(format!(
                    "smtp_url: unknown scheme {other:?}; use smtp://, smtp+starttls:// or smtps://"
                ));
            }
        };
        let port = port.unwrap_or(default_port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(wrapper) = tls {
            let parameters = TlsParameters::new(host.clone())
                .map_err(|e| format!("smtp_url: TLS setup failed: {e}"))?;
            builder = builder.tls(if wrapper {
                Tls::Wrapper(parameters)
            } else {
                Tls::Required(parameters)
            });
        }
        if let Some(userinfo) = userinfo {
            if tls.is_none() {
                return Err("smtp_url: credentials need smtp+starttls:// or smtps://".to_owned());
            }
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |part: &str| {
                percent_decode_str(part)
                    .decode_utf8()
                    .map(|text| text.into_owned())
                    .map_err(|_| "smtp_url: the credentials are not valid percent-encoded UTF-8")
            };
            builder = builder.credentials(Credentials::new(decode(user)?, decode(password)?));
        }
        Ok(Self::Smtp {
            transport: Box::new(builder.build()),
            endpoint: format!("{scheme}://{host}:{port}"),
        })
    }

    /// A line for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::Log => "log".to_owned(),
            Self::Smtp { endpoint, .. } => endpoint.clone(),
        }
    }
}

/// Whether `text` is a mailbox `mail_from` can be: `Name <addr@host>` or `addr@host`.
pub fn check_mailbox(text: &str) -> Result<(), String> {
    text.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|error| format!("not a mail address: {error}"))
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let bad = || "smtp_url: expected HOST[:PORT] after the scheme".to_owned();
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err(bad());
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| bad()))
        .transpose()?;
    Ok((host.to_owned(), port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[async_trait]
impl MailTransport for Mailer {
    async fn send(&self, from: &str, message: &Message) -> Result<(), SendError> {
        match self {
            Self::Log => {
                // The one place a mail's link may reach a log: the operator chose
                // `smtp_url = "log"`, which start-up announces loudly.
                tracing::warn!(
                    target: "valet::mail",
                    from,
                    to = %message.to,
                    subject = %message.subject,
                    body = %message.body,
                    "mail NOT sent (smtp_url = \"log\")"
                );
                Ok(())
            }
            Self::Smtp { transport, .. } => {
                let email = build(from, message)?;
                match transport.send(email).await {
                    Ok(_) => Ok(()),
                    Err(error) if error.is_permanent() => {
                        Err(SendError::Permanent(error.to_string()))
                    }
                    Err(error) => Err(SendError::Temporary(error.to_string())),
                }
            }
        }
    }
}

fn build(from: &str, message: &Message) -> Result<Email, SendError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| SendError::Permanent(format!("mail_from: {e}")))?;
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("recipient address: {e}")))?;
    Email::builder()
        .from(from)
        .to(to)
        .subject(message.subject.as_str())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(message.body.clone())
        .map_err(|e| SendError::Permanent(format!("message: {e}")))
}

/// Sends queued mail until `shutdown` fires: at once when this node queues
/// some, and every [`MAIL_POLL_INTERVAL`] for the rest.
pub fn spawn(
    server: Arc<AuthorizationServer>,
    mailer: Arc<Mailer>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(MAIL_POLL_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                () = server.mail_queued() => {}
                _ = poll.tick() => {}
            }
            loop {
                match server.send_due_mail(mailer.as_ref()).await {
                    // A full batch: more may be due.
                    Ok(round) if round.claimed() >= valet_core::mail::BATCH as usize => {}
                    Ok(_) => break,
                    Err(error) => {
                        tracing::error!(%error, "the mail outbox could not be read; will retry");
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_transport() {
        assert!(matches!(Mailer::from_url("log"), Ok(Mailer::Log)));
        let smtp = Mailer::from_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(smtp.describe(), "smtp://127.0.0.1:2525");
        let tls = Mailer::from_url("smtps://user:p%40ss@mail.example.com").unwrap();
        assert_eq!(tls.describe(), "smtps://mail.example.com:465");
        assert!(!format!("{tls:?}").contains("p%40ss"));
        let starttls = Mailer::from_url("smtp+starttls://mail.example.com").unwrap();
        assert_eq!(starttls.describe(), "smtp+starttls://mail.example.com:587");
        assert_eq!(
            Mailer::from_url("smtp://[::1]").unwrap().describe(),
            "smtp://::1:25"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_secrets() {
        for bad in [
            "smtp://mail.example.com",
            "smtp://user:secret@127.0.0.1",
            "http://mail.example.com",
            "mail.example.com",
            "smtps://",
            "smtps://host:99999",
        ] {
            let error = Mailer::from_url(bad).unwrap_err();
            assert!(error.starts_with("smtp_url"), "{bad}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
