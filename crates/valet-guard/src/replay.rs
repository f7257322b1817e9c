//! The `jti`s of recent DPoP proofs (RFC 9449 §11.1), in memory, each until its proof
//! would be too old to be accepted anyway.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

/// Proofs remembered at most; past it, expired entries are dropped, and if the cache is
/// still full new proofs are refused (fail closed) until some expire.
const MAX_REMEMBERED: usize = 1 << 20;
/// Expired entries are swept every this many insertions.
const SWEEP_EVERY: usize = 4096;

/// The `jti`s of recent proofs, per key, with when each may be forgotten.
#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<[u8; 32], i64>,
    inserts: usize,
}

impl ReplayCache {
    /// Records `key` until `until`; `false` if it was already recorded (a replay) or the
    /// cache is full of live entries.
    pub(crate) fn first_use(&self, key: [u8; 32], until: i64, now: i64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.inserts = seen.inserts.wrapping_add(1);
        if seen.inserts.is_multiple_of(SWEEP_EVERY) || seen.until.len() >= MAX_REMEMBERED {
            seen.until.retain(|_, until| *until >= now);
        }
        let full = seen.until.len() >= MAX_REMEMBERED;
        match seen.until.entry(key) {
            Entry::Occupied(mut entry) if *entry.get() < now => {
                entry.insert(until);
                true
            }
            Entry::Occupied(_) => false,
            Entry::Vacant(_) if full => false,
            Entry::Vacant(entry) => {
                entry.insert(until);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_refused_while_remembered_and_accepted_after() {
        let cache = ReplayCache::default();
        assert!(cache.first_use([1; 32], 100, 10));
        assert!(!cache.first_use([1; 32], 100, 50));
        assert!(cache.first_use([2; 32], 100, 50));
        assert!(cache.first_use([1; 32], 200, 101));
    }
}
