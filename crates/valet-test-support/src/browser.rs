//! A browser for the app in process: a cookie jar carried from request to request,
//! and the forms of the sign-in pages.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::http::{Request, header};

use crate::app::{Reply, TestApp, TestClient, WEB_REDIRECT, form_request};
use crate::pkce::Pkce;

/// A browser: remembers cookies between requests.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn absorb(&mut self, reply: &Reply) {
        for value in reply.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, app: &TestApp, path: &str) -> Reply {
        let request = Request::get(path).header(header::COOKIE, self.cookie_header());
        let reply = app.send(request.body(Body::empty()).unwrap()).await;
        self.absorb(&reply);
        reply
    }

    pub async fn post(&mut self, app: &TestApp, path: &str, body: &str) -> Reply {
        let cookies = self.cookie_header();
        let request = form_request(path, None, &[("cookie", &cookies)], body);
        let reply = app.send(request).await;
        self.absorb(&reply);
        reply
    }

    /// A form POST from the TCP peer `peer`, with this browser's cookies and any
    /// extra headers.
    pub async fn post_from(
        &mut self,
        app: &TestApp,
        peer: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let cookies = self.cookie_header();
        let mut all = vec![("cookie", cookies.as_str())];
        all.extend_from_slice(headers);
        let reply = app.post_from(peer, path, None, &all, body).await;
        self.absorb(&reply);
        reply
    }

    /// Opens a fresh openid authorization request for `client` (new PKCE pair);
    /// `extra` is appended to the query.
    pub async fn authorize(&mut self, app: &TestApp, client: &TestClient, extra: &str) -> Reply {
        let path = authorize_path(&client.id, &Pkce::new(), "openid", extra);
        self.get(app, &path).await
    }
}

/// The value of a hidden form field in a page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

/// The login form of `page`, filled in.
pub fn login_form(page: &Reply, username: &str, password: &str) -> String {
    let html = page.text();
    format!(
        "interaction={}&csrf={}&username={}&password={}",
        form_field(&html, "interaction").unwrap(),
        form_field(&html, "csrf").unwrap(),
        encode(username),
        encode(password)
    )
}

/// The consent form of `page`, answered with `decision` (`allow` or `deny`).
pub fn consent_form(page: &Reply, decision: &str) -> String {
    let html = page.text();
    format!(
        "interaction={}&csrf={}&decision={decision}",
        form_field(&html, "interaction").unwrap(),
        form_field(&html, "csrf").unwrap()
    )
}

pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Query parameters of a Location header.
pub fn location_params(reply: &Reply) -> HashMap<String, String> {
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", reply.status, reply.text()));
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The path of an openid authorization request for `client_id` to the test web
/// client's redirect URI, with `pkce`'s challenge; `extra` is appended.
pub fn authorize_path(client_id: &str, pkce: &Pkce, scope: &str, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=xyz%20state&nonce=n-0S6&code_challenge={}&code_challenge_method=S256{extra}",
        encode(WEB_REDIRECT),
        encode(scope),
        pkce.challenge
    )
}
