//! The address a request came from, for the per-address throttles of the login
//! form and of client authentication (read into the request context, see
//! `context`).
//!
//! Behind a load balancer the TCP peer is the balancer. When the peer is one of
//! the configured trusted proxies, the client is the rightmost `X-Forwarded-For`
//! entry that is not itself a trusted proxy: entries to its left were written by
//! the client and prove nothing, entries to its right by proxies we trust. With no
//! trusted proxies (the default) the header is ignored, so a client cannot pick
//! its own throttle bucket by sending one.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self { networks }
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// The client's address, given the TCP peer's and the request headers.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Several headers count as one comma-separated list, in order (RFC 9110 §5.3).
        // Read from the right, hop by hop: a byte the client put into its own part
        // of a line the balancer appended to must not hide the hops after it.
        let hops = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|byte| *byte == b','));
        let mut client = peer;
        for hop in hops {
            let Some(address) = std::str::from_utf8(hop)
                .ok()
                .and_then(|hop| parse_hop(hop.trim()))
            else {
                // Not an address: what a trusted proxy wrote ends here.
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// `192.0.2.1`, `2001:db8::1`, and the forms with a port some proxies write
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let forged = headers(&["198.51.100.7"]);
        assert_eq!(
            none.client_address(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let lb = proxies(&["10.0.0.0/8"]);
        let forged = headers(&["198.51.100.7"]);
        assert_eq!(
            lb.client_address(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let lb = proxies(&["10.0.0.0/8", "192.0.2.10/32"]);
        // The client forged the first entry; the balancer appended the real one;
        // a second trusted proxy appended the balancer.
        let chain = headers(&["198.51.100.7, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(
            lb.client_address(ip("192.0.2.10"), &chain),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn ports_ipv6_and_mapped_addresses_are_understood() {
        let lb = proxies(&["10.0.0.0/8", "fd00::/8"]);
        assert_eq!(
            lb.client_address(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.9:4711"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            lb.client_address(ip("fd00::1"), &headers(&["[2001:db8::5]:443"])),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn a_client_byte_that_is_not_text_does_not_hide_the_hops_after_it() {
        let lb = proxies(&["10.0.0.0/8"]);
        // The balancer appended the real client to the line the client sent.
        let mut chain = HeaderMap::new();
        chain.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff, 203.0.113.9").unwrap(),
        );
        assert_eq!(lb.client_address(ip("10.0.0.1"), &chain), ip("203.0.113.9"));
    }

    #[test]
    fn garbage_or_a_missing_header_leaves_the_last_trusted_hop() {
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            lb.client_address(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        assert_eq!(
            lb.client_address(ip("10.0.0.1"), &headers(&["unknown, 10.0.0.2"])),
            ip("10.0.0.2")
        );
    }
}
