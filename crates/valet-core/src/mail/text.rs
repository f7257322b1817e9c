//! The words of a mail: subject and body from the catalogues (`mail.*` keys,
//! see `locales/en.toml`), in the language of the request that caused it.
//!
//! The request's language ([`RequestContext::locale`]) is sealed with the
//! outbox row, because most mail is written later, by the sender, away from
//! the request. A language the catalogues no longer have (an operator removed
//! a file while mail waited) or none at all (mail queued outside a page
//! request, such as `valet user invite`) is written in `default_locale`; a
//! key a language lacks falls back to English, as on pages.
//!
//! [`RequestContext::locale`]: crate::context::RequestContext::locale

use super::Message;
use crate::AuthorizationServer;
use crate::i18n::fill;

impl AuthorizationServer {
    /// The served language for a mail queued with `tag`.
    pub(crate) fn mail_locale(&self, tag: Option<&str>) -> String {
        let catalogues = &self.settings.catalogues;
        tag.and_then(|tag| catalogues.supported(tag))
            .unwrap_or_else(|| catalogues.default_locale())
            .to_owned()
    }

    /// The message `key` names (`key.subject`, `key.body`) in `locale`, to
    /// `to`, with `values` for its placeholders. Values are put in as they
    /// are (mail is plain text) and never read as placeholders themselves.
    pub(crate) fn write_mail(
        &self,
        locale: &str,
        key: &str,
        to: String,
        values: &[(&str, &str)],
    ) -> Message {
        let text = |part: &str| {
            let full = format!("{key}.{part}");
            let template = self
                .settings
                .catalogues
                .text(locale, &full, None)
                .unwrap_or(full.as_str());
            fill(template, |name| {
                values
                    .iter()
                    .find(|(placeholder, _)| *placeholder == name)
                    .map(|(_, value)| (*value).to_owned())
            })
        };
        Message {
            to,
            subject: text("subject").trim().to_owned(),
            body: text("body"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::i18n::{BUILT_IN, Catalogue, placeholders};

    /// Every `mail.*` message has a subject and a body, and the body's
    /// placeholders are the same in every built-in language.
    #[test]
    fn every_mail_has_a_subject_and_a_body() {
        let english = Catalogue::parse(BUILT_IN[0].1).unwrap();
        let mails: Vec<_> = english
            .texts
            .keys()
            .filter_map(|key| key.strip_prefix("mail.")?.strip_suffix(".subject"))
            .collect();
        assert!(mails.len() >= 7, "{mails:?}");
        for mail in mails {
            let body = &english.texts[&format!("mail.{mail}.body")];
            assert!(placeholders(body).contains("issuer"), "mail.{mail}.body");
        }
    }
}
