//! Branding and languages: the pages' language from `ui_locales`,
//! `Accept-Language` and `default_locale`; the brand on every page; and the
//! catalogues complete for every template.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use valet_core::branding::Branding;
use valet_core::i18n::{BUILT_IN, Catalogue, Catalogues, placeholders};
use valet_test_support::api::*;

/// GET `path` with this browser's cookies and an `Accept-Language` header.
async fn get_in(app: &TestApp, browser: &mut Browser, path: &str, accept_language: &str) -> Reply {
    let request = Request::get(path)
        .header(header::COOKIE, browser.cookie_header())
        .header(header::ACCEPT_LANGUAGE, accept_language)
        .body(Body::empty())
        .unwrap();
    let reply = app.send(request).await;
    browser.absorb(&reply);
    reply
}

/// POST a form with this browser's cookies and an `Accept-Language` header.
async fn post_in(
    app: &TestApp,
    browser: &mut Browser,
    path: &str,
    body: &str,
    accept_language: &str,
) -> Reply {
    let cookies = browser.cookie_header();
    let headers = [
        ("cookie", cookies.as_str()),
        ("accept-language", accept_language),
    ];
    let reply = app.send(form_request(path, None, &headers, body)).await;
    browser.absorb(&reply);
    reply
}

fn sign_in_path(client: &TestClient, extra: &str) -> String {
    authorize_path(&client.id, &Pkce::new(), "openid email", extra)
}

#[tokio::test]
async fn accept_language_de_gives_the_german_sign_in_page() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    let page = get_in(&app, &mut browser, &sign_in_path(&client, ""), "de").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(html.contains("<h1>Anmelden</h1>"), "{html}");
    assert!(
        html.contains("um mit <strong>Photo App</strong> fortzufahren"),
        "{html}"
    );
    assert!(html.contains("<label for=\"username\">Benutzername oder E-Mail</label>"));
    assert!(!html.contains("Sign in"), "no English left: {html}");
    // Without the header: English.
    let page = get_in(
        &app,
        &mut Browser::default(),
        &sign_in_path(&client, ""),
        "",
    )
    .await;
    assert!(page.text().contains("<html lang=\"en\">") && page.text().contains("<h1>Sign in</h1>"));
}

#[tokio::test]
async fn ui_locales_carries_through_sign_in_and_consent() {
    let app = TestApp::new().await;
    app.user("alice").await;
    let client = app.web_client(|_| {}).await;
    let mut browser = Browser::default();
    // The first language Valet has wins, over the browser's English.
    let page = get_in(
        &app,
        &mut browser,
        &sign_in_path(&client, "&ui_locales=fr%20de%20en"),
        "en",
    )
    .await;
    let html = page.text();
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("<h1>Anmelden</h1>"),
        "{html}"
    );
    assert_eq!(
        browser
            .cookies
            .get("__Host-valet-locale")
            .map(String::as_str),
        Some("de")
    );

    // A wrong password: the logic's message, in German.
    let wrong = post_in(
        &app,
        &mut browser,
        "/login",
        &login_form(&page, "alice", "not the password"),
        "en",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .contains("Benutzername oder Passwort ist falsch."),
        "{}",
        wrong.text()
    );

    let consent = post_in(
        &app,
        &mut browser,
        "/login",
        &login_form(&wrong, "alice", PASSWORD),
        "en",
    )
    .await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.text());
    let html = consent.text();
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(html.contains("<h1>Photo App erlauben?</h1>"), "{html}");
    assert!(
        html.contains("Sie mit Ihrem Konto anmelden") && html.contains("Ihre E-Mail-Adresse sehen"),
        "{html}"
    );
    assert!(
        html.contains(">Erlauben<")
            && html.contains(">Ablehnen<")
            && html.contains("Angemeldet als alice")
    );

    let back = post_in(
        &app,
        &mut browser,
        "/consent",
        &consent_form(&consent, "allow"),
        "en",
    )
    .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert!(location_params(&back).contains_key("code"));

    // A new request without ui_locales leaves the choice to the browser again.
    let page = get_in(
        &app,
        &mut browser,
        &sign_in_path(&client, "&prompt=login"),
        "en",
    )
    .await;
    assert!(
        page.text().contains("<html lang=\"en\">"),
        "{}",
        page.text()
    );
    assert!(!browser.cookies.contains_key("__Host-valet-locale"));
}

#[tokio::test]
async fn unsupported_or_hostile_languages_fall_back_to_english() {
    let app = TestApp::new().await;
    let client = app.web_client(|_| {}).await;
    for (extra, accept) in [
        ("&ui_locales=fr%20es", "it, pt;q=0.5"),
        ("&ui_locales=%3Cscript%3E", "<script>"),
        ("", "de;q=0"),
        ("", &"x-".repeat(400)),
    ] {
        let mut browser = Browser::default();
        let page = get_in(&app, &mut browser, &sign_in_path(&client, extra), accept).await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        assert!(
            html.contains("<html lang=\"en\">") && html.contains("<h1>Sign in</h1>"),
            "{extra} {accept}"
        );
        assert!(
            !html.contains("<script>\"") && !browser.cookies.contains_key("__Host-valet-locale")
        );
    }
    // A forged locale cookie is not echoed; only a language Valet has counts.
    let mut browser = Browser::default();
    browser
        .cookies
        .insert("__Host-valet-locale".into(), "%3Cb%3E".into());
    let page = get_in(&app, &mut browser, "/device", "").await;
    assert!(
        page.text().contains("<html lang=\"en\">"),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn q_values_choose_the_language() {
    let app = TestApp::new().await;
    for (accept, lang) in [
        ("fr, en;q=0.5, de;q=0.8", "de"),
        ("de;q=0.1, en", "en"),
        ("de-CH;q=0.9, en;q=0.3", "de"),
        ("en-GB, de;q=1.0", "en"),
    ] {
        let page = get_in(&app, &mut Browser::default(), "/device", accept).await;
        assert!(
            page.text().contains(&format!("<html lang=\"{lang}\">")),
            "{accept}: {}",
            page.text()
        );
    }
    let page = get_in(&app, &mut Browser::default(), "/device", "de").await;
    assert!(page.text().contains("<h1>Gerät verbinden</h1>"));
}

#[tokio::test]
async fn error_pages_speak_the_language_too() {
    let app = TestApp::new().await;
    let path = authorize_path("no-such-client", &Pkce::new(), "openid", "");
    let page = get_in(&app, &mut Browser::default(), &path, "de-DE,de;q=0.9").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let html = page.text();
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("<h1>Unbekannte Anwendung</h1>"),
        "{html}"
    );
    assert!(
        html.contains("Die Anwendung, die Sie hierher geschickt hat, ist nicht registriert."),
        "{html}"
    );
}

#[tokio::test]
async fn default_locale_and_discovery() {
    let mut settings = settings();
    settings.catalogues = Arc::new(Catalogues::with_overrides("de", &[]).unwrap());
    let app = TestApp::with_settings(settings).await;
    let page = get_in(&app, &mut Browser::default(), "/device", "").await;
    assert!(
        page.text().contains("<html lang=\"de\">"),
        "{}",
        page.text()
    );
    let page = get_in(&app, &mut Browser::default(), "/device", "en").await;
    assert!(page.text().contains("<html lang=\"en\">"));

    let discovery = app.get("/.well-known/openid-configuration").await.json();
    assert_eq!(
        discovery["ui_locales_supported"],
        serde_json::json!(["de", "en"])
    );
}

#[tokio::test]
async fn operators_catalogues_override_texts() {
    let mut settings = settings();
    let files = [(
        "de".to_owned(),
        "[login]\ntitle = \"Einloggen bei Acme\"\n".to_owned(),
    )];
    settings.catalogues = Arc::new(Catalogues::with_overrides("en", &files).unwrap());
    let app = TestApp::with_settings(settings).await;
    let client = app.web_client(|_| {}).await;
    let page = get_in(
        &app,
        &mut Browser::default(),
        &sign_in_path(&client, ""),
        "de",
    )
    .await;
    let html = page.text();
    assert!(
        html.contains("<h1>Einloggen bei Acme</h1>") && html.contains("Benutzername oder E-Mail"),
        "{html}"
    );
}

#[tokio::test]
async fn branding_appears_on_every_page() {
    let mut settings = settings();
    let branding = Branding::from_settings(
        "Acme ID",
        Some("https://cdn.acme.test/logo.svg"),
        Some("#0b5d1e"),
        Some("#8fd19e"),
    )
    .unwrap();
    settings.branding = Arc::new(branding);
    let app = TestApp::with_settings(settings).await;
    let client = app.web_client(|_| {}).await;
    for path in [sign_in_path(&client, ""), "/device".to_owned()] {
        let page = get_in(&app, &mut Browser::default(), &path, "").await;
        let html = page.text();
        assert!(
            html.contains("--accent: #0b5d1e;") && html.contains("--accent: #8fd19e;"),
            "{html}"
        );
        assert!(
            html.contains("<span>Acme ID</span>")
                && html.contains("<img src=\"https:&#x2f;&#x2f;cdn.acme.test&#x2f;logo.svg\""),
            "{html}"
        );
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("img-src 'self' data: https://cdn.acme.test;"),
            "{csp}"
        );
    }
    // Without branding: Valet's own name and colours, no other image origin.
    let app = TestApp::new().await;
    let page = get_in(&app, &mut Browser::default(), "/device", "").await;
    assert!(
        page.text().contains("<span>Valet</span>") && page.text().contains("--accent: #2f5bd3;")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("img-src 'self' data:;")
    );
}

#[tokio::test]
async fn values_in_texts_are_escaped() {
    let app = TestApp::new().await;
    let client = app
        .web_client(|c| c.name = "<img src=x onerror=alert(1)>".into())
        .await;
    let page = get_in(
        &app,
        &mut Browser::default(),
        &sign_in_path(&client, ""),
        "de",
    )
    .await;
    let html = page.text();
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        html.contains("um mit <strong>&lt;img src=x onerror=alert(1)&gt;</strong> fortzufahren"),
        "{html}"
    );
}

// The catalogues against the templates: every key a template uses exists,
// every key is used, and no template has text outside a lookup.

const TEMPLATE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");

fn templates() -> Vec<(String, String)> {
    let mut found: Vec<_> = std::fs::read_dir(TEMPLATE_DIR)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "html"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    found.sort();
    found
}

/// The keys of `t("…")` calls in `text`.
fn keys_used(text: &str) -> BTreeSet<String> {
    text.split("t(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(key, _)| key.to_owned())
        .collect()
}

#[test]
fn every_key_used_exists_and_every_key_is_used() {
    let english = Catalogue::parse(BUILT_IN[0].1).unwrap();
    let mut used = BTreeSet::new();
    for (name, source) in templates() {
        for key in keys_used(&source) {
            let plural = [format!("{key}.one"), format!("{key}.other")];
            assert!(
                english.texts.contains_key(&key)
                    || plural.iter().all(|k| english.texts.contains_key(k)),
                "{name} uses `{key}`, which en.toml lacks"
            );
            used.insert(key);
        }
    }
    // Mail is written by the logic: `write_mail(…, "mail.reset", …)` uses
    // `mail.reset.subject` and `mail.reset.body`.
    let sources = rust_sources();
    for key in english.texts.keys() {
        let base = key
            .strip_suffix(".one")
            .or_else(|| key.strip_suffix(".other"))
            .unwrap_or(key);
        let mail_used = key.starts_with("mail.")
            && key
                .rsplit_once('.')
                .is_some_and(|(mail, _)| sources.contains(&format!("\"{mail}\"")));
        assert!(
            used.contains(key) || used.contains(base) || mail_used,
            "en.toml's `{key}` is used by no template and no mail"
        );
    }
}

fn rust_sources() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut sources = String::new();
    for dir in ["valet-core/src", "valet-server/src"] {
        collect_rust(&std::path::Path::new(root).join(dir), &mut sources);
    }
    sources
}

#[test]
fn every_message_is_one_the_logic_says() {
    let english = Catalogue::parse(BUILT_IN[0].1).unwrap();
    let sources = rust_sources();
    for message in english.messages.keys() {
        assert!(
            sources.contains(&format!("\"{message}\"")),
            "message {message:?} is said nowhere"
        );
    }
}

fn collect_rust(dir: &std::path::Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// A heuristic: outside template tags, scripts, styles and markup, a template
/// holds no letters; and the attributes people read (`alt`, `placeholder`,
/// `aria-label`, `title`) are lookups too. The web console's pages
/// (`console_*`) are for operators and in English only (README, "Web console").
#[test]
fn no_template_has_untranslated_text() {
    let user_facing = templates()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("console_"));
    for (name, source) in user_facing {
        let mut text = strip_between(&source, "<script", "</script>");
        text = strip_between(&text, "<style", "</style>");
        text = strip_between(&text, "{%", "%}");
        text = strip_between(&text, "{{", "}}");
        for attribute in ["alt=\"", "placeholder=\"", "aria-label=\"", "title=\""] {
            for value in text
                .split(attribute)
                .skip(1)
                .filter_map(|rest| rest.split_once('"'))
            {
                assert!(
                    value.0.chars().all(|c| !c.is_alphabetic()),
                    "{name}: {attribute}{}\" is not a lookup",
                    value.0
                );
            }
        }
        let outside_tags = strip_between(&text, "<", ">");
        let letters: String = outside_tags.chars().filter(|c| c.is_alphabetic()).collect();
        assert!(
            letters.is_empty(),
            "{name} has untranslated text: {:?}",
            outside_tags.trim()
        );
    }
}

fn strip_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, after)) = rest.split_once(open) {
        out.push_str(before);
        out.push(' ');
        rest = after.split_once(close).map_or("", |(_, next)| next);
    }
    out.push_str(rest);
    out
}

#[test]
fn placeholders_of_every_language_match_english() {
    let english = Catalogue::parse(BUILT_IN[0].1).unwrap();
    for (locale, source) in BUILT_IN {
        let catalogue = Catalogue::parse(source).unwrap();
        assert_eq!(
            catalogue.texts.keys().collect::<Vec<_>>(),
            english.texts.keys().collect::<Vec<_>>(),
            "{locale} has exactly English's keys"
        );
        for (key, text) in &catalogue.texts {
            assert_eq!(
                placeholders(text),
                placeholders(&english.texts[key]),
                "{locale}: {key}"
            );
        }
        assert_eq!(
            catalogue.messages.keys().collect::<Vec<_>>(),
            english.messages.keys().collect::<Vec<_>>(),
            "{locale} translates every message"
        );
    }
}
