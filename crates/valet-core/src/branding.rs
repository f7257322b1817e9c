//! How the user-facing pages look: the product's name, its logo and its
//! accent colours, checked at start for legible contrast (WCAG 2.2 SC 1.4.3,
//! level AA: 4.5:1 for text).

use std::fmt;

/// WCAG 2.2 SC 1.4.3 (AA): the least contrast ratio for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// The page colours an accent colour meets, per colour scheme (base.html):
/// in the light scheme the accent is link text on the white card and the
/// background of white button text; in the dark scheme it is link text on the
/// dark card and the background of button text in the card's colour.
pub const LIGHT_CARD: Color = Color([0xff, 0xff, 0xff]);
pub const DARK_CARD: Color = Color([0x1d, 0x20, 0x26]);

/// The accent colours Valet ships with (both pass the contrast check).
pub const DEFAULT_COLOR: Color = Color([0x2f, 0x5b, 0xd3]);
pub const DEFAULT_COLOR_DARK: Color = Color([0x7c, 0x9c, 0xff]);

/// An sRGB colour, written `#rrggbb`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Color(pub [u8; 3]);

impl Color {
    /// `#rrggbb` or `#rgb` (CSS hex notation); nothing else, since the value
    /// goes into the pages' style sheet.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('#')?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |c: char| c.to_digit(16).and_then(|d| u8::try_from(d).ok());
        let digits: Vec<u8> = hex.chars().filter_map(digit).collect();
        match digits.as_slice() {
            [r, g, b] => Some(Self([r * 17, g * 17, b * 17])),
            [r1, r2, g1, g2, b1, b2] => Some(Self([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2])),
            _ => None,
        }
    }

    /// Relative luminance (WCAG 2.2, "relative luminance").
    pub fn luminance(self) -> f64 {
        let channel = |value: u8| {
            let c = f64::from(value) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// WCAG 2.2 "contrast ratio": (L1 + 0.05) / (L2 + 0.05), lighter over darker.
    pub fn contrast_ratio(self, other: Self) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl fmt::Debug for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The branding settings, as the pages use them.
#[derive(Debug, Clone, PartialEq)]
pub struct Branding {
    /// Shown at the top of every page and as the default page title.
    pub product_name: String,
    /// An `https://` URL (the pages' CSP allows images from its origin) or a
    /// path on Valet's own origin, served by the proxy in front of it.
    pub logo_url: Option<String>,
    /// The accent colour in the light colour scheme.
    pub color: Color,
    /// The accent colour in the dark colour scheme.
    pub color_dark: Color,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            product_name: "Valet".to_owned(),
            logo_url: None,
            color: DEFAULT_COLOR,
            color_dark: DEFAULT_COLOR_DARK,
        }
    }
}

impl Branding {
    /// The settings' values, checked: a non-empty name, a logo at an `https`
    /// URL or a path here, hex colours, each legible where the pages use it.
    pub fn from_settings(
        product_name: &str,
        logo_url: Option<&str>,
        color: Option<&str>,
        color_dark: Option<&str>,
    ) -> Result<Self, String> {
        let product_name = product_name.trim();
        if product_name.is_empty() || product_name.chars().any(char::is_control) {
            return Err(
                "setting `product_name`: give a name without control characters".to_owned(),
            );
        }
        if let Some(url) = logo_url {
            check_logo_url(url)?;
        }
        let color = match color {
            Some(text) => checked_color(
                "brand_color",
                text,
                LIGHT_CARD,
                "white (the card and the button text in the light scheme)",
            )?,
            None => DEFAULT_COLOR,
        };
        let color_dark = match color_dark {
            Some(text) => checked_color(
                "brand_color_dark",
                text,
                DARK_CARD,
                "#1d2026 (the card and the button text in the dark scheme)",
            )?,
            None => DEFAULT_COLOR_DARK,
        };
        Ok(Self {
            product_name: product_name.to_owned(),
            logo_url: logo_url.map(str::to_owned),
            color,
            color_dark,
        })
    }

    /// The origin of an absolute logo URL, for the pages' `img-src`.
    pub fn logo_origin(&self) -> Option<&str> {
        let url = self.logo_url.as_deref()?;
        let rest = url.strip_prefix("https://")?;
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        url.get(..("https://".len() + host_end))
    }
}

fn checked_color(
    setting: &str,
    text: &str,
    against: Color,
    where_used: &str,
) -> Result<Color, String> {
    let color = Color::parse(text).ok_or_else(|| {
        format!("setting `{setting}`: `{text}` is not a hex colour such as #2f5bd3")
    })?;
    let ratio = color.contrast_ratio(against);
    if ratio < MIN_CONTRAST {
        return Err(format!(
            "setting `{setting}`: {color} has a contrast ratio of {ratio:.2}:1 against {where_used}; WCAG AA needs at least {MIN_CONTRAST}:1 for text"
        ));
    }
    Ok(color)
}

/// A logo is an `https` URL or a path on this server, with nothing that could
/// leave the `src` attribute or the CSP's source list.
fn check_logo_url(url: &str) -> Result<(), String> {
    let safe = url
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | ';' | ',' | '\\'));
    let https = url
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    let path = url.starts_with('/') && !url.starts_with("//");
    if safe && (https || path) {
        Ok(())
    } else {
        Err(format!(
            "setting `logo_url`: `{url}` must be an https:// URL or a path on this server starting with /"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_in_hex_only() {
        assert_eq!(Color::parse("#2f5bd3"), Some(Color([0x2f, 0x5b, 0xd3])));
        assert_eq!(Color::parse("#FFF"), Some(Color([255, 255, 255])));
        assert_eq!(Color::parse("#fff").unwrap().to_string(), "#ffffff");
        for bad in ["2f5bd3", "#2f5bd", "#ggg", "red", "#fff;x", "", "#+12345"] {
            assert_eq!(Color::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn contrast_ratios_match_wcag() {
        let black = Color([0, 0, 0]);
        assert!((black.contrast_ratio(LIGHT_CARD) - 21.0).abs() < 1e-9);
        assert!((LIGHT_CARD.contrast_ratio(LIGHT_CARD) - 1.0).abs() < 1e-9);
        // #767676 on white is the well-known 4.54:1, just AA.
        let grey = Color::parse("#767676").unwrap();
        assert!((grey.contrast_ratio(LIGHT_CARD) - 4.54).abs() < 0.01);
        assert!(DEFAULT_COLOR.contrast_ratio(LIGHT_CARD) >= MIN_CONTRAST);
        assert!(DEFAULT_COLOR_DARK.contrast_ratio(DARK_CARD) >= MIN_CONTRAST);
    }

    #[test]
    fn settings_are_checked() {
        let branding = Branding::from_settings(
            "Acme ID",
            Some("https://cdn.acme.test/logo.svg"),
            Some("#0b5d1e"),
            None,
        )
        .unwrap();
        assert_eq!(branding.color.to_string(), "#0b5d1e");
        assert_eq!(branding.logo_origin(), Some("https://cdn.acme.test"));
        let query =
            Branding::from_settings("Acme", Some("https://cdn.acme.test?v=2"), None, None).unwrap();
        assert_eq!(query.logo_origin(), Some("https://cdn.acme.test"));
        assert_eq!(
            Branding::from_settings("Acme", Some("/static/logo.png"), None, None)
                .unwrap()
                .logo_origin(),
            None
        );
        let error = Branding::from_settings("Acme", None, Some("#ffd700"), None).unwrap_err();
        assert!(
            error.contains("brand_color") && error.contains("contrast ratio of 1.4"),
            "{error}"
        );
        let error = Branding::from_settings("Acme", None, None, Some("#202020")).unwrap_err();
        assert!(error.contains("brand_color_dark"), "{error}");
        assert!(
            Branding::from_settings("Acme", None, Some("blue"), None)
                .unwrap_err()
                .contains("not a hex colour")
        );
        for logo in [
            "http://x.test/l.png",
            "//x.test/l.png",
            "javascript:alert(1)",
            "/a\"b",
            "https://",
        ] {
            assert!(
                Branding::from_settings("Acme", Some(logo), None, None).is_err(),
                "{logo}"
            );
        }
        assert!(Branding::from_settings("  ", None, None, None).is_err());
    }
}
