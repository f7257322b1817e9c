//! Server-rendered HTML pages: templates compiled in (auto-escaped), each page
//! with a fresh CSP nonce for its inline style (and, for form_post, its script).

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use valet_jose::{b64url, random_bytes};

const TEMPLATES: [(&str, &str); 31] = [
    ("device.html", include_str!("../templates/device.html")),
    (
        "device_done.html",
        include_str!("../templates/device_done.html"),
    ),
    ("account.html", include_str!("../templates/account.html")),
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("webauthn.html", include_str!("../templates/webauthn.html")),
    ("passkeys.html", include_str!("../templates/passkeys.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    (
        "second_factor.html",
        include_str!("../templates/second_factor.html"),
    ),
    (
        "enrol_totp.html",
        include_str!("../templates/enrol_totp.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    (
        "form_post.html",
        include_str!("../templates/form_post.html"),
    ),
    (
        "reset_request.html",
        include_str!("../templates/reset_request.html"),
    ),
    (
        "reset_sent.html",
        include_str!("../templates/reset_sent.html"),
    ),
    (
        "reset_confirm.html",
        include_str!("../templates/reset_confirm.html"),
    ),
    (
        "reset_done.html",
        include_str!("../templates/reset_done.html"),
    ),
    (
        "verify_email.html",
        include_str!("../templates/verify_email.html"),
    ),
    (
        "email_verified.html",
        include_str!("../templates/email_verified.html"),
    ),
    ("register.html", include_str!("../templates/register.html")),
    (
        "registered.html",
        include_str!("../templates/registered.html"),
    ),
    // The web console.
    (
        "console_base.html",
        include_str!("../templates/console_base.html"),
    ),
    (
        "console_client_fields.html",
        include_str!("../templates/console_client_fields.html"),
    ),
    (
        "console_clients.html",
        include_str!("../templates/console_clients.html"),
    ),
    (
        "console_client_new.html",
        include_str!("../templates/console_client_new.html"),
    ),
    (
        "console_client.html",
        include_str!("../templates/console_client.html"),
    ),
    (
        "console_users.html",
        include_str!("../templates/console_users.html"),
    ),
    (
        "console_user.html",
        include_str!("../templates/console_user.html"),
    ),
    (
        "console_keys.html",
        include_str!("../templates/console_keys.html"),
    ),
    (
        "console_audit.html",
        include_str!("../templates/console_audit.html"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(error) = env.add_template(name, source) {
                tracing::error!(%error, template = name, "template does not compile");
            }
        }
        env
    })
}

/// A page to render: its template and context (the nonce is added here).
/// `None` if the template failed (logged here; the answer is
/// `ApiError::Rendering`).
pub fn render(status: StatusCode, template: &str, context: minijinja::Value) -> Option<Response> {
    let nonce = random_bytes::<16>().map(b64url).unwrap_or_default();
    let rendered = environment()
        .get_template(template)
        .and_then(|t| t.render(minijinja::context! { nonce => &nonce, ..context }));
    let body = match rendered {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, template, "page rendering failed");
            return None;
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No framing, no plugins, nothing loaded from elsewhere; only this page's own
    // nonce'd style and script run, and scripts fetch only from this origin (the
    // passkey buttons ask for their WebAuthn options). form-action is left open: after the consent
    // form, the browser is redirected to the client, which form-action would block.
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    Some(response)
}
