//! Paging for the admin lists: a page of at most `limit` records in a stable
//! order (creation time, then id) and an opaque cursor naming the last record
//! returned, so the next page starts right after it even when records were
//! added or deleted in between.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::{AdminError, Field};

/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Which page: at most `limit` records after `cursor` (from the start
/// without one).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page, and the cursor of the next (`None`: this is the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A record's place in the order: creation time, then id.
type Position<'a> = (i64, &'a str);

impl PageRequest {
    pub(crate) fn limit(&self) -> Result<usize, AdminError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_SIZE as usize),
            Some(limit @ 1..=MAX_PAGE_SIZE) => Ok(limit as usize),
            Some(limit) => Err(AdminError::invalid(
                Field::new("limit"),
                Some(limit.to_string()),
                "must be between 1 and 500",
            )),
        }
    }

    pub(crate) fn after(&self) -> Result<Option<(i64, String)>, AdminError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let invalid = || {
            AdminError::invalid(
                Field::new("cursor"),
                None,
                "is not a cursor this list returned",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (created_at, id) = text.split_once(':').ok_or_else(invalid)?;
        let created_at = created_at.parse().map_err(|_| invalid())?;
        Ok(Some((created_at, id.to_owned())))
    }

    /// The page from what the store returned for at most `limit + 1` records
    /// after [`Self::after`]: the extra record only says there is a next page.
    pub(crate) fn finish<T>(
        limit: usize,
        mut records: Vec<T>,
        position: impl Fn(&T) -> Position<'_>,
    ) -> Page<T> {
        let more = records.len() > limit;
        records.truncate(limit);
        let next_cursor = if more {
            records.last().map(|last| {
                let (created_at, id) = position(last);
                URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
            })
        } else {
            None
        };
        Page {
            items: records,
            next_cursor,
        }
    }

    /// Cuts the page out of `records`, which must be sorted by `position`.
    pub(crate) fn cut<T>(
        &self,
        records: Vec<T>,
        position: impl Fn(&T) -> Position<'_>,
    ) -> Result<Page<T>, AdminError> {
        let limit = self.limit()?;
        let after = self.after()?;
        let mut rest: Vec<T> = match &after {
            Some((created_at, id)) => records
                .into_iter()
                .filter(|record| position(record) > (*created_at, id.as_str()))
                .collect(),
            None => records,
        };
        rest.truncate(limit.saturating_add(1));
        Ok(Self::finish(limit, rest, position))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn records() -> Vec<(i64, String)> {
        (0..5)
            .map(|i| (i / 2, format!("id-{i}")))
            .collect::<Vec<_>>()
    }

    fn cut(request: &PageRequest) -> Result<Page<(i64, String)>, AdminError> {
        request.cut(records(), |(at, id)| (*at, id.as_str()))
    }

    #[test]
    fn pages_walk_the_whole_list_once() {
        let mut seen = Vec::new();
        let mut request = PageRequest {
            limit: Some(2),
            cursor: None,
        };
        loop {
            let page = cut(&request).unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.into_iter().map(|(_, id)| id));
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }
        let all: Vec<String> = records().into_iter().map(|(_, id)| id).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn an_exact_last_page_has_no_cursor() {
        let page = cut(&PageRequest {
            limit: Some(5),
            cursor: None,
        })
        .unwrap();
        assert_eq!(page.items.len(), 5);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn bad_limits_and_cursors_name_the_field() {
        for limit in [0, MAX_PAGE_SIZE + 1] {
            let error = cut(&PageRequest {
                limit: Some(limit),
                cursor: None,
            })
            .unwrap_err();
            assert_eq!(error.field_error().unwrap().field.to_string(), "limit");
        }
        for cursor in ["!!", "bm8tY29sb24", "eDp5"] {
            let error = cut(&PageRequest {
                limit: None,
                cursor: Some(cursor.to_owned()),
            })
            .unwrap_err();
            assert_eq!(error.field_error().unwrap().field.to_string(), "cursor");
        }
    }
}
