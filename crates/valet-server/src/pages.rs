//! Server-rendered HTML pages: templates compiled in (auto-escaped), each page
//! with a fresh CSP nonce for its inline style (and, for form_post, its script),
//! in the request's language (`t(…)` looks texts up in the catalogues, see the
//! `locale` module) and with the operator's branding.

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, HtmlEscape};
use valet_core::i18n;
use valet_jose::{b64url, random_bytes};

use crate::locale::{self, PageLanguage};

const TEMPLATES: [(&str, &str); 33] = [
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
    (
        "upstream_unknown.html",
        include_str!("../templates/upstream_unknown.html"),
    ),
    (
        "account_upstreams.html",
        include_str!("../templates/account_upstreams.html"),
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
        env.add_function("t", translate);
        env.add_filter("tr", translate_message);
        env
    })
}

/// `t("login.lead", client=…)`: the text under the key in the page's language
/// (English if it lacks it), its `{name}` placeholders filled with the
/// arguments, HTML-escaped; the text itself is markup (catalogues are as
/// trusted as templates). A `count` argument picks the plural form.
fn translate(key: &str, arguments: Kwargs) -> Result<Value, minijinja::Error> {
    let language = locale::current();
    let count = arguments.get::<Option<i64>>("count")?;
    let text = language
        .catalogues
        .text(&language.locale, key, count)
        .ok_or_else(|| {
            minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                format!("no text under the key `{key}`"),
            )
        })?;
    let filled = i18n::fill(text, |name| {
        let value = arguments.get::<Value>(name).ok()?;
        Some(HtmlEscape(&value.to_string()).to_string())
    });
    Ok(Value::from_safe_string(filled))
}

/// `error|tr`: a message from the logic, in the page's language when the
/// catalogue has it (it is text, so it stays escaped).
fn translate_message(message: &str) -> String {
    let language = locale::current();
    language
        .catalogues
        .message(&language.locale, message)
        .to_owned()
}

/// A page's context with what every page shows: the language and the brand.
fn page_frame(language: &PageLanguage, context: minijinja::Value) -> minijinja::Value {
    let branding = &language.branding;
    minijinja::context! {
        lang => &language.locale,
        brand => minijinja::context! {
            product_name => &branding.product_name,
            logo_url => &branding.logo_url,
            color => branding.color.to_string(),
            color_dark => branding.color_dark.to_string(),
        },
        ..context
    }
}

/// A page to render: its template and context (the nonce is added here).
/// `None` if the template failed (logged here; the answer is
/// `ApiError::Rendering`).
pub fn render(status: StatusCode, template: &str, context: minijinja::Value) -> Option<Response> {
    let nonce = random_bytes::<16>().map(b64url).unwrap_or_default();
    let language = locale::current();
    let context = page_frame(&language, context);
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
    // The logo, if it is elsewhere, is the one image from another origin.
    let logo = language
        .branding
        .logo_origin()
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:{logo}; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    Some(response)
}
