//! The session and CSRF cookies: HttpOnly, SameSite=Lax, and `__Host-` prefixed
//! and Secure whenever the issuer is https (RFC 6265bis §4.1.3.2).

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

#[derive(Debug, Clone, Copy)]
pub struct CookieNames {
    secure: bool,
}

impl CookieNames {
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    pub fn session(&self) -> &'static str {
        if self.secure {
            "__Host-valet-session"
        } else {
            "valet-session"
        }
    }

    pub fn csrf(&self) -> &'static str {
        if self.secure {
            "__Host-valet-csrf"
        } else {
            "valet-csrf"
        }
    }

    /// The language the authorization request's `ui_locales` chose, kept
    /// for the rest of its interaction (the `locale` module).
    pub fn locale(&self) -> &'static str {
        if self.secure {
            "__Host-valet-locale"
        } else {
            "valet-locale"
        }
    }

    /// The upstream identity waiting to be linked (see `handlers::upstream`).
    pub fn upstream_link(&self) -> &'static str {
        if self.secure {
            "__Host-valet-upstream-link"
        } else {
            "valet-upstream-link"
        }
    }

    pub fn set(&self, response: &mut Response, name: &str, value: &str, max_age: i64) {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie =
            format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }

    pub fn clear(&self, response: &mut Response, name: &str) {
        self.set(response, name, "", 0);
    }
}

/// The value of cookie `name`, if the request carries exactly one.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned());
    let first = found.next();
    // Two cookies of the same name (one planted by a sibling domain) are refused.
    if found.next().is_some() { None } else { first }
}
