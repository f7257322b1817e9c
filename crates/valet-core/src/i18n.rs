//! Message catalogues: the words of the user-facing pages in each language.
//!
//! A catalogue is a TOML file of texts under dotted keys (`login.title`), with
//! `{name}` placeholders filled per page, and a `[messages]` table translating
//! the messages the sign-in logic puts on pages, keyed by their English
//! wording (gettext-style: the logic keeps speaking English, the page
//! translates). English and German are built in; operators add or override
//! languages with files of their own ([`Catalogues::with_overrides`]), checked
//! at start: a key English does not have, or a placeholder its English text
//! does not fill, is refused there rather than shown broken on a page.
//!
//! Plurals: a key with `.one` and `.other` variants is looked up with a
//! `count` (the English and German rule: one for 1, other otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The catalogues built into the binary, as (locale, TOML text).
pub const BUILT_IN: [(&str, &str); 2] = [
    ("en", include_str!("../locales/en.toml")),
    ("de", include_str!("../locales/de.toml")),
];

/// The language every key has, and the fallback for a key a language lacks.
pub const FALLBACK_LOCALE: &str = "en";

/// The table of [`Catalogue::messages`] in a catalogue file.
const MESSAGES_TABLE: &str = "messages";

/// One language's texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// Dotted key → text (markup allowed, `{name}` placeholders).
    pub texts: BTreeMap<String, String>,
    /// English message → the same message in this language.
    pub messages: BTreeMap<String, String>,
}

impl Catalogue {
    /// Parses a catalogue file: nested tables flatten to dotted keys; every
    /// value must be a string.
    pub fn parse(source: &str) -> Result<Self, String> {
        let table: toml::Table = toml::from_str(source).map_err(|error| error.to_string())?;
        let mut catalogue = Self::default();
        for (key, value) in table {
            if key == MESSAGES_TABLE {
                let toml::Value::Table(messages) = value else {
                    return Err("`messages` must be a table".to_owned());
                };
                for (english, text) in messages {
                    let toml::Value::String(text) = text else {
                        return Err(format!("message {english:?} must be a string"));
                    };
                    catalogue.messages.insert(english, text);
                }
            } else {
                flatten(&key, value, &mut catalogue.texts)?;
            }
        }
        Ok(catalogue)
    }

    /// `other`'s texts and messages replace or add to this one's.
    fn overlay(&mut self, other: Self) {
        self.texts.extend(other.texts);
        self.messages.extend(other.messages);
    }
}

fn flatten(
    prefix: &str,
    value: toml::Value,
    into: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    match value {
        toml::Value::String(text) => {
            into.insert(prefix.to_owned(), text);
            Ok(())
        }
        toml::Value::Table(table) => {
            for (key, value) in table {
                flatten(&format!("{prefix}.{key}"), value, into)?;
            }
            Ok(())
        }
        _ => Err(format!("`{prefix}` must be a string or a table")),
    }
}

/// The names of the `{name}` placeholders in `text`.
pub fn placeholders(text: &str) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some((_, after)) = rest.split_once('{') {
        let Some((name, next)) = after.split_once('}') else {
            break;
        };
        if is_placeholder_name(name) {
            names.insert(name);
            rest = next;
        } else {
            rest = after;
        }
    }
    names
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` with each `{name}` replaced by `value(name)`; a placeholder without
/// a value stays as it is.
pub fn fill(text: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        let filled = after
            .split_once('}')
            .filter(|(name, _)| is_placeholder_name(name))
            .and_then(|(name, next)| Some((value(name)?, next)));
        match filled {
            Some((filled, next)) => {
                out.push_str(&filled);
                rest = next;
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `tag` is a plausible BCP 47 language tag for a catalogue's name
/// (`de`, `pt-BR`): ASCII letters, digits and hyphens, starting with 2–3 letters.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|part| {
            (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// Every language Valet speaks, and the default one.
#[derive(Clone, PartialEq, Eq)]
pub struct Catalogues {
    /// Lower-cased language tag → its catalogue.
    by_locale: BTreeMap<String, Catalogue>,
    default_locale: String,
}

impl fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogues")
            .field("locales", &self.by_locale.keys().collect::<Vec<_>>())
            .field("default_locale", &self.default_locale)
            .finish()
    }
}

impl Default for Catalogues {
    fn default() -> Self {
        Self::built_in()
    }
}

impl Catalogues {
    /// English and German, English the default. A built-in file that does not
    /// parse (the tests make sure none does) leaves its language out.
    pub fn built_in() -> Self {
        let by_locale = BUILT_IN
            .iter()
            .filter_map(|(locale, source)| match Catalogue::parse(source) {
                Ok(catalogue) => Some(((*locale).to_owned(), catalogue)),
                Err(error) => {
                    tracing::error!(locale, %error, "built-in catalogue does not parse");
                    None
                }
            })
            .collect();
        Self {
            by_locale,
            default_locale: FALLBACK_LOCALE.to_owned(),
        }
    }

    /// The built-in catalogues with operators' files laid over them, as
    /// (language tag, TOML text) — a file for a built-in language overrides
    /// some of its texts, one for another language adds it (its missing texts
    /// fall back to English) — and `default_locale` the default language.
    /// Every key must be one English has, and every placeholder one its
    /// English text has.
    pub fn with_overrides(
        default_locale: &str,
        files: &[(String, String)],
    ) -> Result<Self, String> {
        let mut catalogues = Self::built_in();
        let english = catalogues
            .by_locale
            .get(FALLBACK_LOCALE)
            .cloned()
            .unwrap_or_default();
        for (tag, source) in files {
            if !is_language_tag(tag) {
                return Err(format!(
                    "catalogue `{tag}.toml`: `{tag}` is not a language tag such as `fr` or `pt-BR`"
                ));
            }
            let file = Catalogue::parse(source)
                .map_err(|error| format!("catalogue `{tag}.toml`: {error}"))?;
            check_against(&english, &file)
                .map_err(|error| format!("catalogue `{tag}.toml`: {error}"))?;
            catalogues
                .by_locale
                .entry(tag.to_ascii_lowercase())
                .or_default()
                .overlay(file);
        }
        let default_locale = default_locale.to_ascii_lowercase();
        if !catalogues.by_locale.contains_key(&default_locale) {
            return Err(format!(
                "setting `default_locale`: `{default_locale}` has no catalogue (available: {})",
                catalogues.locales().collect::<Vec<_>>().join(", ")
            ));
        }
        catalogues.default_locale = default_locale;
        Ok(catalogues)
    }

    /// The language tags served, for discovery's `ui_locales_supported`.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.by_locale.keys().map(String::as_str)
    }

    pub fn default_locale(&self) -> &str {
        &self.default_locale
    }

    /// The served language that fits `tag` (case-insensitive; `de-CH` falls
    /// back to `de`, RFC 4647 §3.4 lookup), if any.
    pub fn supported(&self, tag: &str) -> Option<&str> {
        let mut candidate = tag.trim().to_ascii_lowercase();
        loop {
            if let Some((locale, _)) = self.by_locale.get_key_value(&candidate) {
                return Some(locale);
            }
            let cut = candidate.rfind('-')?;
            candidate.truncate(cut);
        }
    }

    /// `key`'s text in `locale`, else in English; with a `count`, its plural
    /// form (`key.one` for 1, `key.other` otherwise).
    pub fn text(&self, locale: &str, key: &str, count: Option<i64>) -> Option<&str> {
        let key = match count {
            Some(1) => format!("{key}.one"),
            Some(_) => format!("{key}.other"),
            None => key.to_owned(),
        };
        self.lookup(locale, |catalogue| catalogue.texts.get(&key))
    }

    /// An English message from the logic in `locale` (itself if untranslated).
    pub fn message<'a>(&'a self, locale: &str, english: &'a str) -> &'a str {
        self.lookup(locale, |catalogue| catalogue.messages.get(english))
            .unwrap_or(english)
    }

    fn lookup<'a>(
        &'a self,
        locale: &str,
        find: impl Fn(&'a Catalogue) -> Option<&'a String>,
    ) -> Option<&'a str> {
        [locale, FALLBACK_LOCALE]
            .into_iter()
            .filter_map(|locale| self.by_locale.get(locale))
            .find_map(find)
            .map(String::as_str)
    }

    /// One language's catalogue (for tests and checks).
    pub fn catalogue(&self, locale: &str) -> Option<&Catalogue> {
        self.by_locale.get(locale)
    }
}

/// An operator's file: only keys English has, and only its placeholders.
fn check_against(english: &Catalogue, file: &Catalogue) -> Result<(), String> {
    for (key, text) in &file.texts {
        let Some(original) = english.texts.get(key) else {
            return Err(format!("unknown key `{key}`"));
        };
        let known = placeholders(original);
        if let Some(unknown) = placeholders(text)
            .iter()
            .find(|name| !known.contains(*name))
        {
            return Err(format!(
                "key `{key}` uses the placeholder {{{unknown}}}, which is not filled there (it has: {})",
                describe(&known)
            ));
        }
    }
    if let Some(unknown) = file
        .messages
        .keys()
        .find(|english_message| !english.messages.contains_key(*english_message))
    {
        return Err(format!("unknown message {unknown:?}"));
    }
    Ok(())
}

fn describe(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|name| format!("{{{name}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_catalogue_parses_and_has_exactly_the_english_keys() {
        let english = Catalogue::parse(BUILT_IN[0].1).unwrap();
        for (locale, source) in BUILT_IN {
            let catalogue = Catalogue::parse(source).unwrap();
            let keys: Vec<_> = catalogue.texts.keys().collect();
            assert_eq!(keys, english.texts.keys().collect::<Vec<_>>(), "{locale}");
            let messages: Vec<_> = catalogue.messages.keys().collect();
            assert_eq!(
                messages,
                english.messages.keys().collect::<Vec<_>>(),
                "{locale}"
            );
            for (key, text) in &catalogue.texts {
                assert_eq!(
                    placeholders(text),
                    placeholders(&english.texts[key]),
                    "{locale}: placeholders of {key}"
                );
                assert!(!text.trim().is_empty(), "{locale}: {key} is empty");
            }
        }
        // English messages translate to themselves.
        assert!(english.messages.iter().all(|(key, text)| key == text));
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_left() {
        assert_eq!(
            placeholders("Hi {user}, {count} {not a name} {}"),
            BTreeSet::from(["user", "count"])
        );
        let filled = fill("{a} and {b} and {c", |name| {
            (name == "a").then(|| "A".to_owned())
        });
        assert_eq!(filled, "A and {b} and {c");
    }

    #[test]
    fn lookup_falls_back_to_english_and_picks_plurals() {
        let catalogues = Catalogues::built_in();
        assert_eq!(catalogues.text("de", "login.title", None), Some("Anmelden"));
        assert_eq!(catalogues.text("xx", "login.title", None), Some("Sign in"));
        assert!(
            catalogues
                .text("en", "account.passkeys", Some(1))
                .unwrap()
                .contains("passkey registered")
        );
        assert!(
            catalogues
                .text("en", "account.passkeys", Some(2))
                .unwrap()
                .contains("passkeys registered")
        );
        assert_eq!(
            catalogues.message("de", "Invalid request"),
            "Ungültige Anfrage"
        );
        assert_eq!(catalogues.message("de", "Something new"), "Something new");
        assert_eq!(catalogues.supported("DE-ch"), Some("de"));
        assert_eq!(catalogues.supported("fr"), None);
    }

    #[test]
    fn operators_override_and_add_languages_within_the_english_keys() {
        let files = [
            (
                "de".to_owned(),
                "[login]\ntitle = \"Einloggen\"\n".to_owned(),
            ),
            (
                "fr".to_owned(),
                "[login]\nlead = \"pour continuer vers {client}\"\n".to_owned(),
            ),
        ];
        let catalogues = Catalogues::with_overrides("fr", &files).unwrap();
        assert_eq!(catalogues.default_locale(), "fr");
        assert_eq!(
            catalogues.text("de", "login.title", None),
            Some("Einloggen")
        );
        assert_eq!(
            catalogues.text("de", "login.submit", None),
            Some("Anmelden")
        );
        assert_eq!(catalogues.text("fr", "login.title", None), Some("Sign in"));
        assert_eq!(catalogues.locales().collect::<Vec<_>>(), ["de", "en", "fr"]);

        let refused = |tag: &str, source: &str, default: &str| {
            Catalogues::with_overrides(default, &[(tag.to_owned(), source.to_owned())]).unwrap_err()
        };
        assert!(
            refused("fr", "[login]\ntitel = \"x\"\n", "en").contains("unknown key `login.titel`")
        );
        assert!(
            refused("fr", "[login]\nlead = \"{kunde}\"\n", "en").contains("placeholder {kunde}")
        );
        assert!(
            refused("fr", "[messages]\n\"Nope\" = \"Non\"\n", "en").contains("unknown message")
        );
        assert!(refused("fr", "login = 3\n", "en").contains("must be a string"));
        assert!(refused("fr", "[login\n", "en").contains("fr.toml"));
        assert!(refused("../x", "", "en").contains("not a language tag"));
        assert!(refused("fr", "", "es").contains("`es` has no catalogue"));
    }
}
