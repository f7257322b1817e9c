//! `valet healthcheck`: asks a running node whether it is ready, for container
//! health checks where there is no curl (a distroless image).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Args;

use crate::config::Config;
use crate::storage::CliError;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The readiness URL to ask [default: /readyz of the metrics listener if
    /// `metrics_bind` is set, else of `bind`, on loopback when bound to all addresses]
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// Succeeds when the node answers 200; an error (and so exit status 1) otherwise.
pub async fn run(args: HealthcheckArgs, config: Option<&Config>) -> Result<(), CliError> {
    let url = match (args.url, config) {
        (Some(url), _) => url,
        (None, Some(config)) => readiness_url(config)?,
        (None, None) => return Err("no --url and no configuration to derive it from".into()),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout.clamp(1, 300)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let status = response.status();
    if status.is_success() {
        println!("{url}: {status}");
        return Ok(());
    }
    let reason = response.text().await.unwrap_or_default();
    Err(format!("{url}: {status} {}", reason.trim()).into())
}

/// `/readyz` where this configuration serves it: the metrics listener (plain
/// http) if there is one, else the public listener (https with `tls_cert`).
fn readiness_url(config: &Config) -> Result<String, CliError> {
    let (scheme, address) = match config.metrics_bind_address()? {
        Some(address) => ("http", address),
        None if config.tls_cert.is_some() => ("https", config.bind_address()?),
        None => ("http", config.bind_address()?),
    };
    Ok(format!("{scheme}://{}/readyz", reachable(address)))
}

/// A listener on every address (`0.0.0.0`, `[::]`) is reached on loopback.
fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_url_follows_the_listeners() {
        let mut config = Config {
            bind: "0.0.0.0:8080".to_owned(),
            ..Config::default()
        };
        assert_eq!(
            readiness_url(&config).unwrap(),
            "http://127.0.0.1:8080/readyz"
        );
        config.metrics_bind = Some("[::]:9090".to_owned());
        assert_eq!(readiness_url(&config).unwrap(), "http://[::1]:9090/readyz");
        config.metrics_bind = None;
        config.bind = "192.0.2.7:8443".to_owned();
        config.tls_cert = Some("cert.pem".into());
        assert_eq!(
            readiness_url(&config).unwrap(),
            "https://192.0.2.7:8443/readyz"
        );
    }
}
