//! The audit trail.

use serde_json::json;

use super::*;
use valet_core::audit::{AuditEvent, AuditFilter, AuditKind};

fn event(kind: AuditKind, at: i64, user: Option<&str>, client: Option<&str>) -> AuditEvent {
    let mut event = AuditEvent::new(kind, at).detail("scope", "openid");
    event.user_id = user.map(str::to_owned);
    event.client_id = client.map(str::to_owned);
    event
}

/// Appended records come back whole, newest first, filtered by every given part.
pub async fn audit_append_and_filter(store: &dyn Store) {
    let run = unique();
    let (alice, bob) = (format!("conf-{run}-alice"), format!("conf-{run}-bob"));
    let (app, svc) = (format!("conf-{run}-app"), format!("conf-{run}-svc"));
    let mut first = event(AuditKind::LoginFailed, NOW, Some(&alice), Some(&app));
    first.address = Some("192.0.2.7".into());
    first.detail.insert("count".into(), json!(3));
    let events = [
        first.clone(),
        event(AuditKind::LoginSucceeded, NOW + 1, Some(&alice), Some(&app)),
        event(AuditKind::TokenIssued, NOW + 2, None, Some(&svc)),
        // Same second as the one before: the order of appending decides.
        event(AuditKind::ConsentGranted, NOW + 2, Some(&bob), Some(&app)),
    ];
    store
        .append_audit_events(&events)
        .await
        .expect("append audit events");
    store
        .append_audit_events(&[])
        .await
        .expect("append nothing");

    let query = |user: Option<&str>, client: Option<&str>, kind: Option<AuditKind>| AuditFilter {
        user_id: user.map(str::to_owned),
        client_id: client.map(str::to_owned),
        event: kind,
        since: Some(NOW),
        limit: 100,
        ..AuditFilter::default()
    };
    let of_alice = store
        .audit_events(&query(Some(&alice), None, None))
        .await
        .expect("audit events of alice");
    assert_eq!(of_alice, vec![events[1].clone(), first]);

    let of_app = store
        .audit_events(&query(None, Some(&app), None))
        .await
        .expect("audit events of app");
    let kinds: Vec<&str> = of_app.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["consent.granted", "login.succeeded", "login.failed"],
        "newest first, appending order breaking ties"
    );

    let failures = store
        .audit_events(&query(
            Some(&alice),
            Some(&app),
            Some(AuditKind::LoginFailed),
        ))
        .await
        .expect("alice's failures at app");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].address.as_deref(), Some("192.0.2.7"));
    assert_eq!(failures[0].detail["count"], json!(3));

    let of_svc = store
        .audit_events(&query(None, Some(&svc), Some(AuditKind::LoginFailed)))
        .await
        .expect("no such events");
    assert!(of_svc.is_empty());

    let mut recent = query(None, Some(&app), None);
    recent.since = Some(NOW + 1);
    recent.limit = 1;
    let newest = store.audit_events(&recent).await.expect("newest of app");
    assert_eq!(newest, vec![events[3].clone()]);
}

/// A flush of more records than one statement takes stores every one, in order
/// (the order of appending breaks ties of the same second).
pub async fn audit_append_many(store: &dyn Store) {
    const EVENTS: usize = 450;
    let client = format!("conf-{}-many", unique());
    let events: Vec<AuditEvent> = (0..EVENTS)
        .map(|i| {
            let at = NOW + i64::try_from(i / 7).expect("small");
            event(AuditKind::TokenIssued, at, None, Some(&client)).detail("n", i.to_string())
        })
        .collect();
    store
        .append_audit_events(&events)
        .await
        .expect("append many");
    let stored = store
        .audit_events(&AuditFilter {
            client_id: Some(client.clone()),
            limit: 1_000,
            ..AuditFilter::default()
        })
        .await
        .expect("audit events");
    let mut expected = events;
    expected.reverse();
    assert_eq!(stored, expected, "every record, newest first");
}

/// `actor` matches the text `detail.actor` exactly (not a prefix, not a
/// number, not another member); `until` bounds the time from above, inclusive.
pub async fn audit_filter_by_actor_and_until(store: &dyn Store) {
    let run = unique();
    let client = format!("conf-{run}-acted");
    let (robot, other) = (format!("conf-{run}-robot"), format!("conf-{run}-other"));
    let acted = |at: i64, actor: serde_json::Value| {
        let mut record = event(AuditKind::ClientUpdated, at, None, Some(&client));
        record.detail.insert("actor".into(), actor);
        record
    };
    let mut unrelated = event(AuditKind::ClientUpdated, NOW + 1, None, Some(&client));
    unrelated.detail.insert("via".into(), json!(robot));
    let events = [
        acted(NOW, json!(robot)),
        acted(NOW + 1, json!(other)),
        acted(NOW + 2, json!(robot)),
        acted(NOW + 3, json!(format!("{robot}x"))),
        acted(NOW + 4, json!(7)),
        unrelated,
        event(AuditKind::ClientUpdated, NOW + 5, None, Some(&client)),
    ];
    store
        .append_audit_events(&events)
        .await
        .expect("append audit events");
    let query = |actor: Option<&str>, until: Option<i64>| AuditFilter {
        client_id: Some(client.clone()),
        actor: actor.map(str::to_owned),
        until,
        since: Some(NOW),
        limit: 100,
        ..AuditFilter::default()
    };
    let by_robot = store
        .audit_events(&query(Some(&robot), None))
        .await
        .expect("events by robot");
    assert_eq!(by_robot, vec![events[2].clone(), events[0].clone()]);
    let by_number = store
        .audit_events(&query(Some("7"), None))
        .await
        .expect("events by a number");
    assert!(by_number.is_empty(), "only a text actor matches");
    let early = store
        .audit_events(&query(None, Some(NOW + 1)))
        .await
        .expect("events until NOW + 1");
    assert_eq!(
        early.iter().map(|e| e.at).collect::<Vec<_>>(),
        [NOW + 1, NOW + 1, NOW],
        "until is inclusive"
    );
    let both = store
        .audit_events(&query(Some(&robot), Some(NOW + 1)))
        .await
        .expect("events by robot until NOW + 1");
    assert_eq!(both, vec![events[0].clone()]);
}

/// `purge_audit_events` deletes only records from strictly before `before`, the
/// oldest first, at most `limit` per call.
pub async fn audit_purge(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let client = format!("conf-{run}-purge");
    let events: Vec<AuditEvent> = (0..4)
        .map(|i| event(AuditKind::TokenRevoked, now - 3 + i, None, Some(&client)))
        .collect();
    // Clear what earlier runs left before our window, so the counts below are exact.
    while store
        .purge_audit_events(now - 3, 1_000)
        .await
        .expect("clear older records")
        > 0
    {}
    store.append_audit_events(&events).await.expect("append");

    assert_eq!(store.purge_audit_events(now, 2).await.expect("purge"), 2);
    assert_eq!(store.purge_audit_events(now, 2).await.expect("purge"), 1);
    assert_eq!(store.purge_audit_events(now, 2).await.expect("purge"), 0);
    let left = store
        .audit_events(&AuditFilter {
            client_id: Some(client),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .expect("what is left");
    assert_eq!(left, vec![events[3].clone()]);
}
