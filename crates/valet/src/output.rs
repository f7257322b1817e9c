//! Human-readable output helpers.

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-28 21:14:32 UTC`
pub fn timestamp(unix: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{unix} (out of range)"))
}

/// `3d 4h`, `12m 5s`, `40s`
pub fn duration(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `in 9m 12s` or `3m 0s ago`
pub fn relative(unix: i64, now: i64) -> String {
    if unix >= now {
        format!("in {}", duration(unix - now))
    } else {
        format!("{} ago", duration(now - unix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(duration(552), "9m 12s");
        assert_eq!(relative(100, 40), "in 1m 0s");
        assert_eq!(relative(40, 100), "1m 0s ago");
        assert_eq!(duration(90_000), "1d 1h");
    }
}
