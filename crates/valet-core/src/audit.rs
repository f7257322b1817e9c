//! Audit events: security-relevant happenings (sign-ins, consent, tokens issued and
//! revoked, refresh-token reuse, client and key changes) as structured records with
//! a stable schema, written both to the log (target `valet::audit`) and to the
//! store, where `valet audit` finds them.
//!
//! Schema (version 1; fields are only ever added):
//!
//! | field | meaning |
//! |---|---|
//! | `at` | Unix seconds |
//! | `event` | one of [`AuditKind`], e.g. `login.failed` |
//! | `user_id` | the user concerned, if any |
//! | `client_id` | the client concerned, if any |
//! | `address` | the requester's address, if known (see `trusted_proxies`) |
//! | `detail` | a JSON object, per event: `grant_type`, `scope`, `grant_id`, `kid`, `count`, `request_id` (the `X-Request-Id` of the sign-in, consent, logout and revocation requests), … |
//!
//! Requests never wait for the store: [`AuditLog::record`] logs the event at once
//! and queues it; [`AuditLog::flush`] (every second on each node, and at
//! shutdown) writes the queue in one transaction. So the log is complete even if
//! the process is killed, and the store lags it by at most a second. Issuing a
//! client_credentials token, the hot path, writes nothing per token: its events
//! are counted per client, scope and address, and each flush logs and stores one
//! `token.issued` record per such group with `detail.count`. Failures and
//! refusals that an attacker can repeat thousands of times a second
//! (`login.failed`, `login.throttled`, `client_auth.failed`,
//! `client_auth.throttled`: see [`AuditKind::is_coalesced`]) are coalesced the
//! same way: per event, user and source network (see `CoalesceKey`), the first occurrence since the
//! last flush is logged at once and queued, later ones only add to its
//! `detail.count`, and the flush logs the group once more with its total when it
//! saw more than one. So one source costs one row per flush interval, not one per
//! request. If the queue
//! overflows (a store outage, or a flood of failures) events are dropped from the
//! store (not from the log) and counted in [`AuditLog::dropped`], with a warning;
//! the requests themselves are never refused for it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::store::{Store, StoreError};

/// The records of the trail; they are defined with the store's other records.
pub use crate::store::{AuditEvent, AuditFilter, AuditKind, MAX_RECORDED_ID};

/// Records waiting for the next flush; beyond this, new ones are dropped.
const QUEUE: usize = 16_384;

/// client_credentials tokens since the last flush, counted rather than queued:
/// first time seen and count, per client, scope and address. Nested so that
/// counting a token allocates only for a group not seen before.
type IssuedCounts = HashMap<String, HashMap<String, HashMap<Option<IpAddr>, (i64, u64)>>>;

/// What makes two coalesced events one group: the event, the user, and the
/// source network (an IPv6 address by its /64, as the throttles count it). The
/// client is not part of it: a caller chooses the client id it presents, so a
/// group per client id would give an attacker one row per request again.
type CoalesceKey = (AuditKind, Option<String>, Option<IpAddr>);

/// Events waiting for the next flush, and the coalesced groups among them.
#[derive(Debug, Default)]
struct Queue {
    events: Vec<AuditEvent>,
    /// Per group of a coalesced kind: its event's index in `events` (`None`
    /// when the queue was full: the group is still counted, so its later
    /// occurrences are not logged one by one), and how many it stands for.
    groups: HashMap<CoalesceKey, (Option<usize>, u64)>,
}

/// The node's audit queue. Share one per process.
#[derive(Debug, Default)]
pub struct AuditLog {
    queued: Mutex<Queue>,
    issued: Mutex<IssuedCounts>,
    dropped: AtomicU64,
}

impl AuditLog {
    /// Logs `event` and queues it for the next flush; never waits. An event of a
    /// coalesced kind whose group is already queued is only counted (and not
    /// logged on its own).
    pub fn record(&self, event: AuditEvent) {
        let coalesced = event.event.is_coalesced();
        if !coalesced {
            event.log();
        }
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        let key = coalesced.then(|| coalesce_key(&event));
        if let Some(key) = &key
            && let Some(&mut (index, ref mut count)) = queued.groups.get_mut(key)
        {
            *count = count.saturating_add(1);
            if let Some(first) = index.and_then(|index| queued.events.get_mut(index))
                && first.client_id.is_some()
                && first.client_id != event.client_id
            {
                // Several client ids from one source: the row names none.
                first.client_id = None;
                first
                    .detail
                    .insert("several_clients".to_owned(), true.into());
            }
            return;
        }
        if coalesced {
            // The first of its group: at most one per group and flush interval.
            event.log();
        }
        if queued.events.len() < QUEUE {
            if let Some(key) = key {
                let index = queued.events.len();
                queued.groups.insert(key, (Some(index), 1));
            }
            queued.events.push(event);
            return;
        }
        if let Some(key) = key
            && queued.groups.len() < QUEUE
        {
            queued.groups.insert(key, (None, 1));
        }
        drop(queued);
        let before = self.dropped.fetch_add(1, Ordering::Relaxed);
        if before.is_power_of_two() || before == 0 {
            tracing::warn!(
                dropped = before + 1,
                "audit queue full: audit events are being dropped"
            );
        }
    }

    /// Counts one client_credentials token for the next flush.
    pub fn record_client_credentials(
        &self,
        client_id: &str,
        scope: &str,
        address: Option<IpAddr>,
        at: i64,
    ) {
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        let by_scope = match issued.get_mut(client_id) {
            Some(by_scope) => by_scope,
            None => issued.entry(client_id.to_owned()).or_default(),
        };
        let by_address = match by_scope.get_mut(scope) {
            Some(by_address) => by_address,
            None => by_scope.entry(scope.to_owned()).or_default(),
        };
        let (_, count) = by_address
            .entry(address.map(|a| a.to_canonical()))
            .or_insert((at, 0));
        *count = count.saturating_add(1);
    }

    /// Events lost to a full queue since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stores everything queued, in one transaction, after logging the counted
    /// client_credentials summaries and the totals of coalesced groups seen more
    /// than once (the rest was logged when recorded). On a
    /// store error the events are lost to the store, not to the log; the error is
    /// returned for the caller to report.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let Queue { mut events, groups } =
            std::mem::take(&mut *self.queued.lock().unwrap_or_else(PoisonError::into_inner));
        for (index, count) in groups.into_values() {
            if let Some(event) = index.and_then(|index| events.get_mut(index)) {
                event.detail.insert("count".to_owned(), count.into());
                if count > 1 {
                    event.log();
                }
            }
        }
        let counted =
            std::mem::take(&mut *self.issued.lock().unwrap_or_else(PoisonError::into_inner));
        for (client_id, by_scope) in counted {
            for (scope, by_address) in by_scope {
                for (address, (first_at, count)) in by_address {
                    let summary = AuditEvent::new(AuditKind::TokenIssued, first_at)
                        .client(&client_id)
                        .address(address)
                        .detail("grant_type", "client_credentials")
                        .detail("scope", scope.as_str())
                        .detail("count", count);
                    summary.log();
                    events.push(summary);
                }
            }
        }
        if events.is_empty() {
            return Ok(0);
        }
        events.sort_by_key(|event| event.at);
        store.append_audit_events(&events).await?;
        Ok(events.len())
    }
}

/// The group of a coalesced event (see [`CoalesceKey`]).
fn coalesce_key(event: &AuditEvent) -> CoalesceKey {
    let source = event
        .address
        .as_deref()
        .and_then(|address| address.parse::<IpAddr>().ok())
        .map(|address| crate::throttle::source_network(Some(address)));
    (event.event, event.user_id.clone(), source)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let log = AuditLog::default();
        for i in 0..QUEUE + 3 {
            log.record(AuditEvent::new(AuditKind::TokenRevoked, i as i64));
        }
        assert_eq!(log.dropped(), 3);
    }

    #[test]
    fn repeated_failures_are_one_record_per_source_with_a_count() {
        let log = AuditLog::default();
        let attacker = Some(IpAddr::from([203, 0, 113, 7]));
        let other = Some(IpAddr::from([203, 0, 113, 8]));
        for at in 0..1_000 {
            log.record(
                AuditEvent::new(AuditKind::ClientAuthFailed, 100 + at)
                    .client("svc")
                    .address(attacker),
            );
            log.record(AuditEvent::new(AuditKind::LoginThrottled, 100 + at).address(attacker));
        }
        log.record(
            AuditEvent::new(AuditKind::ClientAuthFailed, 150)
                .client("svc")
                .address(other),
        );
        // Another client id from the same source joins its group: the caller
        // chooses the id it presents.
        log.record(
            AuditEvent::new(AuditKind::ClientAuthFailed, 160)
                .client("other")
                .address(attacker),
        );
        // Not coalesced: every one is its own record.
        log.record(AuditEvent::new(AuditKind::TokenRevoked, 170));
        log.record(AuditEvent::new(AuditKind::TokenRevoked, 170));
        let queue = log.queued.lock().unwrap();
        let counts: Vec<_> = queue
            .events
            .iter()
            .map(|e| {
                let count = queue
                    .groups
                    .values()
                    .find(|(index, _)| std::ptr::eq(&queue.events[index.unwrap()], e))
                    .map(|(_, count)| *count);
                (
                    e.event.as_str(),
                    e.client_id.as_deref(),
                    e.address.as_deref(),
                    e.at,
                    count,
                )
            })
            .collect();
        assert_eq!(
            counts,
            [
                (
                    "client_auth.failed",
                    None,
                    Some("203.0.113.7"),
                    100,
                    Some(1_001)
                ),
                (
                    "login.throttled",
                    None,
                    Some("203.0.113.7"),
                    100,
                    Some(1_000)
                ),
                (
                    "client_auth.failed",
                    Some("svc"),
                    Some("203.0.113.8"),
                    150,
                    Some(1)
                ),
                ("token.revoked", None, None, 170, None),
                ("token.revoked", None, None, 170, None),
            ]
        );
    }

    #[test]
    fn one_source_is_one_group_whatever_it_presents() {
        let log = AuditLog::default();
        // Every request with another client id, from addresses across one /64.
        for i in 0..2_000_u16 {
            let address = IpAddr::from([0x2001, 0xdb8, 0, 1, i, 0, 0, 1]);
            log.record(
                AuditEvent::new(AuditKind::ClientAuthThrottled, 100)
                    .client(&format!("client-{i}"))
                    .address(Some(address)),
            );
        }
        let queue = log.queued.lock().unwrap();
        assert_eq!(queue.events.len(), 1);
        assert_eq!(queue.events[0].client_id, None);
        assert_eq!(queue.events[0].detail["several_clients"], true);
        assert_eq!(queue.groups.values().next(), Some(&(Some(0), 2_000)));
    }

    #[test]
    fn with_a_full_queue_a_group_is_still_counted_once() {
        let log = AuditLog::default();
        for i in 0..QUEUE {
            log.record(AuditEvent::new(AuditKind::TokenRevoked, i as i64));
        }
        let attacker = Some(IpAddr::from([203, 0, 113, 7]));
        for at in 0..100 {
            log.record(AuditEvent::new(AuditKind::LoginThrottled, at).address(attacker));
        }
        let queue = log.queued.lock().unwrap();
        assert_eq!(queue.events.len(), QUEUE);
        // One group, not a hundred events logged one by one.
        assert_eq!(queue.groups.len(), 1);
        assert_eq!(queue.groups.values().next(), Some(&(None, 100)));
        drop(queue);
        assert_eq!(log.dropped(), 1);
    }

    #[test]
    fn a_coalesced_group_starts_anew_after_a_flush() {
        let log = AuditLog::default();
        log.record(AuditEvent::new(AuditKind::LoginFailed, 1));
        log.record(AuditEvent::new(AuditKind::LoginFailed, 2));
        let taken = std::mem::take(&mut *log.queued.lock().unwrap());
        assert_eq!(taken.groups.values().next(), Some(&(Some(0), 2)));
        log.record(AuditEvent::new(AuditKind::LoginFailed, 3));
        let queue = log.queued.lock().unwrap();
        assert_eq!(queue.events.len(), 1);
        assert_eq!(queue.events[0].at, 3);
    }

    #[test]
    fn client_credentials_tokens_are_counted_per_group() {
        let log = AuditLog::default();
        for at in 0..5 {
            log.record_client_credentials("svc", "read", None, 100 + at);
        }
        log.record_client_credentials("svc", "write", None, 101);
        let issued = log.issued.lock().unwrap();
        assert_eq!(issued.len(), 1);
        assert_eq!(issued["svc"].len(), 2);
        assert_eq!(issued["svc"]["read"][&None], (100, 5));
        assert_eq!(issued["svc"]["write"][&None], (101, 1));
    }
}
