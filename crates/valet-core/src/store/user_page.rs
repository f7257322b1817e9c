//! Which users a page of the admin user list holds: a keyset position, an
//! offset, a size and an optional search text.

use super::User;

/// A page of users in the stable order (`created_at`, then `user_id`).
#[derive(Debug, Clone, Default)]
pub struct UserPageQuery {
    /// Only users after this position (`created_at`, `user_id`).
    pub after: Option<(i64, String)>,
    /// Only users whose username or email contains this text, ignoring the
    /// case of ASCII letters (SQLite's `lower` folds no others).
    pub search: Option<String>,
    /// Users to skip first (the console's page links count in records).
    pub offset: u32,
    pub limit: u32,
}

impl UserPageQuery {
    /// Whether `user` is on the list (before `offset` and `limit` apply).
    pub fn admits(&self, user: &User) -> bool {
        let after = self
            .after
            .as_ref()
            .is_none_or(|(at, id)| (user.created_at, user.user_id.as_str()) > (*at, id.as_str()));
        let needle = self.search.as_deref().map(str::to_ascii_lowercase);
        let found = needle.is_none_or(|needle| {
            user.username.to_ascii_lowercase().contains(&needle)
                || user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.to_ascii_lowercase().contains(&needle))
        });
        after && found
    }

    /// The search as a `LIKE` pattern matching `lower(column)` with `ESCAPE
    /// '\'`: the text's own `%`, `_` and `\` are escaped so they match only
    /// themselves.
    pub fn like_pattern(&self) -> Option<String> {
        let needle = self.search.as_deref()?.to_ascii_lowercase();
        let mut pattern = String::with_capacity(needle.len() + 2);
        pattern.push('%');
        for c in needle.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        Some(pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_the_search_are_escaped() {
        let query = UserPageQuery {
            search: Some("A_b%c\\D".into()),
            ..UserPageQuery::default()
        };
        assert_eq!(query.like_pattern().as_deref(), Some("%a\\_b\\%c\\\\d%"));
        assert_eq!(UserPageQuery::default().like_pattern(), None);
    }
}
