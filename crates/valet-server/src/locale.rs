//! Which language a page is in, chosen per request: the authorization
//! request's `ui_locales` (OIDC Core §3.1.2.1), kept for the rest of its
//! interaction in a cookie; else the browser's `Accept-Language` (RFC 9110
//! §12.5.4, q-values honoured); else the setting `default_locale`.
//!
//! The choice, with the catalogues and branding, is in scope for the whole
//! request (a task-local set by [`choose_language`]), so every page rendered
//! while answering it, error pages included, speaks the same language.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;
use axum::middleware::Next;
use axum::response::Response;
use valet_core::branding::Branding;
use valet_core::i18n::Catalogues;
use valet_protocol::Form;

use crate::AppState;
use crate::cookies::{self, CookieNames};

/// The longest `Accept-Language` or `ui_locales` read, and the most entries:
/// real ones are a few dozen bytes.
const MAX_HEADER_LEN: usize = 512;
const MAX_ENTRIES: usize = 16;

/// What a page is rendered with.
#[derive(Clone, Debug)]
pub struct PageLanguage {
    pub catalogues: Arc<Catalogues>,
    pub branding: Arc<Branding>,
    /// A language tag the catalogues have.
    pub locale: String,
}

impl Default for PageLanguage {
    fn default() -> Self {
        let catalogues = Arc::new(Catalogues::built_in());
        Self {
            locale: catalogues.default_locale().to_owned(),
            catalogues,
            branding: Arc::new(Branding::default()),
        }
    }
}

tokio::task_local! {
    static PAGE_LANGUAGE: PageLanguage;
}

/// The language of the request being answered (the defaults outside one).
pub fn current() -> PageLanguage {
    PAGE_LANGUAGE.try_with(Clone::clone).unwrap_or_default()
}

/// The language of the request being answered, for its
/// [`RequestContext`](valet_core::RequestContext) (`None` outside one).
pub fn current_tag() -> Option<valet_core::LanguageTag> {
    PAGE_LANGUAGE
        .try_with(|language| valet_core::LanguageTag::parse(&language.locale))
        .ok()
        .flatten()
}

/// Runs `render` with the page language switched to `locale`.
pub fn rendered_in<T>(locale: &str, render: impl FnOnce() -> T) -> T {
    let language = PageLanguage {
        locale: locale.to_owned(),
        ..current()
    };
    PAGE_LANGUAGE.sync_scope(language, render)
}

/// Middleware: chooses the language (the `ui_locales` cookie, then
/// `Accept-Language`, then the default) and answers the request in it.
pub async fn choose_language(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let settings = state.server.settings();
    let catalogues = Arc::clone(&settings.catalogues);
    let names = CookieNames::new(settings.secure_cookies());
    let headers = request.headers();
    let locale = cookies::read(headers, names.locale())
        .and_then(|tag| catalogues.supported(&tag).map(str::to_owned))
        .or_else(|| from_accept_language(&catalogues, headers).map(str::to_owned))
        .unwrap_or_else(|| catalogues.default_locale().to_owned());
    let language = PageLanguage {
        locale,
        catalogues,
        branding: Arc::clone(&settings.branding),
    };
    PAGE_LANGUAGE.scope(language, next.run(request)).await
}

/// OIDC Core §3.1.2.1 `ui_locales`: space-separated tags in order of
/// preference; the first one served wins. `None` when absent or none fits.
pub fn from_ui_locales<'a>(catalogues: &'a Catalogues, form: &Form) -> Option<&'a str> {
    from_ui_locales_text(catalogues, form.optional("ui_locales").ok().flatten()?)
}

/// As [`from_ui_locales`], for the parameter's value.
pub fn from_ui_locales_text<'a>(catalogues: &'a Catalogues, text: &str) -> Option<&'a str> {
    if text.len() > MAX_HEADER_LEN {
        return None;
    }
    text.split(' ')
        .filter(|tag| !tag.is_empty())
        .take(MAX_ENTRIES)
        .find_map(|tag| catalogues.supported(tag))
}

/// RFC 9110 §12.5.4: the served language with the highest q-value (the
/// earlier one on a tie); `q=0` means "not this one"; `*` is ignored (the
/// default is what is left anyway).
pub fn from_accept_language<'a>(
    catalogues: &'a Catalogues,
    headers: &HeaderMap,
) -> Option<&'a str> {
    let mut best: Option<(u16, &str)> = None;
    for value in headers.get_all(ACCEPT_LANGUAGE) {
        let Ok(text) = value.to_str() else { continue };
        if text.len() > MAX_HEADER_LEN {
            continue;
        }
        for entry in text.split(',').take(MAX_ENTRIES) {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let quality = parts.find_map(|part| quality(part.trim())).unwrap_or(1000);
            let Some(locale) = catalogues.supported(tag) else {
                continue;
            };
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, locale));
            }
        }
    }
    best.map(|(_, locale)| locale)
}

/// A `q=` weight in thousandths (RFC 9110 §12.4.2: 0 to 1, three decimals);
/// `Some(0)` for one that does not parse, so a malformed entry is not preferred.
fn quality(part: &str) -> Option<u16> {
    let value = part
        .strip_prefix("q=")
        .or_else(|| part.strip_prefix("Q="))?;
    let parsed = match value.split_once('.') {
        None => value
            .parse::<u16>()
            .ok()
            .map(|whole| whole.saturating_mul(1000)),
        Some((whole, fraction))
            if fraction.len() <= 3 && fraction.chars().all(|c| c.is_ascii_digit()) =>
        {
            let whole = if whole.is_empty() {
                Some(0)
            } else {
                whole.parse::<u16>().ok()
            };
            let padded = format!("{fraction:0<3}");
            whole
                .zip(padded.parse::<u16>().ok())
                .map(|(w, f)| w.saturating_mul(1000).saturating_add(f))
        }
        Some(_) => None,
    };
    Some(parsed.filter(|q| *q <= 1000).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(value).unwrap());
        from_accept_language(&Catalogues::built_in(), &headers).map(str::to_owned)
    }

    #[test]
    fn accept_language_honours_q_values() {
        assert_eq!(accept("de").as_deref(), Some("de"));
        assert_eq!(accept("de-AT,de;q=0.9").as_deref(), Some("de"));
        assert_eq!(accept("fr, de;q=0.5, en;q=0.8").as_deref(), Some("en"));
        assert_eq!(accept("fr, en;q=0.1, de;q=0.2").as_deref(), Some("de"));
        assert_eq!(accept("de;q=0, en;q=0.1").as_deref(), Some("en"));
        assert_eq!(accept("de;q=0").as_deref(), None);
        assert_eq!(accept("fr, *;q=0.5").as_deref(), None);
        assert_eq!(accept("en;q=0.5, de;q=bogus").as_deref(), Some("en"));
        assert_eq!(accept("de;q=1.0, en").as_deref(), Some("de"));
    }

    #[test]
    fn ui_locales_first_served_wins() {
        let catalogues = Catalogues::built_in();
        let choose = |query: &str| {
            from_ui_locales(&catalogues, &Form::parse(query.as_bytes())).map(str::to_owned)
        };
        assert_eq!(choose("ui_locales=fr%20de%20en").as_deref(), Some("de"));
        assert_eq!(choose("ui_locales=de-CH").as_deref(), Some("de"));
        assert_eq!(choose("ui_locales=fr").as_deref(), None);
        assert_eq!(choose("scope=openid").as_deref(), None);
    }
}
