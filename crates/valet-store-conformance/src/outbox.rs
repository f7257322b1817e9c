//! The mail outbox.

use valet_core::store::{MailOutcome, OutboxMail};

use super::*;

fn mail(id: &str, sealed: &[u8], due: i64, created_at: i64) -> OutboxMail {
    OutboxMail {
        mail_id: id.to_owned(),
        sealed: sealed.to_vec(),
        attempts: 0,
        next_attempt_at: due,
        created_at,
        finished_at: None,
        outcome: None,
    }
}

/// Only the mails this check made (a claim may also take older leftovers).
fn mine(claimed: Vec<OutboxMail>, run: &str) -> Vec<OutboxMail> {
    claimed
        .into_iter()
        .filter(|mail| mail.mail_id.contains(run))
        .collect()
}

/// A mail is claimed when due and not leased, counted per claim; a retry puts it
/// back for later; finishing it deletes its content and ends its claims;
/// resolving replaces its content and stores its token in one transaction;
/// purging deletes finished mails only.
pub async fn outbox_lifecycle(store: &dyn Store) {
    let run = unique();
    let now = timeline();
    let a = format!("mail-{run}-a");
    let b = format!("mail-{run}-b");
    let sealed = [0x00, 0xff, 0x10];
    store
        .enqueue_mail(&mail(&a, &sealed, now, now))
        .await
        .expect("enqueue a");
    store
        .enqueue_mail(&mail(&b, b"b", now + 10, now + 1))
        .await
        .expect("enqueue b");
    assert!(matches!(
        store.enqueue_mail(&mail(&a, b"again", now, now)).await,
        Err(StoreError::Conflict)
    ));
    let claim = async |at: i64| {
        mine(
            store.claim_mail(at, at + 300, 1_000).await.expect("claim"),
            &run,
        )
    };

    let first = claim(now).await;
    assert_eq!(first.len(), 1, "only a is due: {first:?}");
    assert_eq!(first[0].mail_id, a);
    assert_eq!(first[0].sealed, sealed);
    assert_eq!(first[0].attempts, 1);
    assert!(claim(now + 5).await.is_empty(), "a is leased, b not due");
    let second = claim(now + 300).await;
    let ids: Vec<_> = second.iter().map(|m| m.mail_id.as_str()).collect();
    assert_eq!(
        ids,
        [a.as_str(), b.as_str()],
        "the lease ran out; oldest due first"
    );
    assert_eq!(second[0].attempts, 2);

    assert!(store.retry_mail(&a, now + 1_000).await.expect("retry"));
    assert!(claim(now + 599).await.is_empty(), "a not due yet, b leased");
    assert_eq!(
        claim(now + 1_000).await.len(),
        2,
        "a due again, b's lease over"
    );

    assert!(
        store
            .finish_mail(&a, MailOutcome::Sent, now + 1_001)
            .await
            .expect("finish")
    );
    let finished = store.get_mail(&a).await.expect("get").expect("still there");
    assert!(finished.sealed.is_empty(), "content deleted once sent");
    assert_eq!(finished.finished_at, Some(now + 1_001));
    assert_eq!(finished.outcome, Some(MailOutcome::Sent));
    assert!(
        !store
            .finish_mail(&a, MailOutcome::Failed, now + 1_002)
            .await
            .expect("finish again")
    );
    assert!(!store.retry_mail(&a, now).await.expect("retry finished"));
    assert!(claim(now + 100_000).await.iter().all(|m| m.mail_id != a));

    // Resolving: the content and the token together, or neither.
    let token = SingleUse {
        kind: SingleUseKind::PasswordReset,
        key: hash(&run, "reset"),
        payload: "{}".to_owned(),
        expires_at: now + 1_800,
        consumed: false,
    };
    assert!(
        !store
            .resolve_mail(&a, b"late", Some(&token))
            .await
            .expect("resolve finished")
    );
    let stored_token = async || {
        store
            .get_single_use(token.kind, &token.key, now)
            .await
            .expect("get token")
    };
    assert_eq!(
        stored_token().await,
        None,
        "nothing stored for a finished mail"
    );
    assert!(
        store
            .resolve_mail(&b, b"message", Some(&token))
            .await
            .expect("resolve")
    );
    assert_eq!(
        store.get_mail(&b).await.expect("get").expect("b").sealed,
        b"message"
    );
    assert_eq!(stored_token().await, Some(token.clone()));
    assert!(matches!(
        store.resolve_mail(&b, b"other", Some(&token)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_mail(&b).await.expect("get").expect("b").sealed,
        b"message",
        "a conflict rolls the content back"
    );

    let listed: Vec<_> = store
        .list_mail(100_000)
        .await
        .expect("list")
        .into_iter()
        .filter(|m| m.mail_id.contains(&run))
        .map(|m| m.mail_id)
        .collect();
    assert_eq!(listed, [a.clone(), b.clone()]);

    assert!(store.purge_mail(now + 1_002, 1_000).await.expect("purge") >= 1);
    assert_eq!(store.get_mail(&a).await.expect("get"), None, "a purged");
    assert!(
        store.get_mail(&b).await.expect("get").is_some(),
        "b pending, kept"
    );
    assert!(
        store
            .finish_mail(&b, MailOutcome::Dropped, now + 2_000)
            .await
            .expect("finish b")
    );
    assert_eq!(
        store.get_mail(&b).await.expect("get").expect("b").outcome,
        Some(MailOutcome::Dropped)
    );
}

/// Eight senders claim at once: every due mail goes to exactly one of them.
pub async fn concurrent_mail_claims(store: &dyn Store) {
    const MAILS: usize = 24;
    const SENDERS: usize = 8;
    let run = unique();
    let now = timeline();
    for i in 0..MAILS {
        store
            .enqueue_mail(&mail(&format!("mail-{run}-{i}"), b"x", now, now))
            .await
            .expect("enqueue");
    }
    let outcomes = join_all(
        (0..SENDERS)
            .map(|_| store.claim_mail(now, now + 300, 4))
            .collect::<Vec<_>>(),
    )
    .await;
    let mut claimed: Vec<String> = outcomes
        .into_iter()
        .flat_map(|outcome| mine(outcome.expect("concurrent claim"), &run))
        .map(|mail| mail.mail_id)
        .collect();
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "no mail claimed twice");
    // What the racers left is still claimable, once.
    let rest = mine(
        store
            .claim_mail(now, now + 300, 1_000)
            .await
            .expect("claim rest"),
        &run,
    );
    assert_eq!(total + rest.len(), MAILS);
    for id in claimed.iter().chain(rest.iter().map(|m| &m.mail_id)) {
        store
            .finish_mail(id, MailOutcome::Sent, now + 1)
            .await
            .expect("finish");
    }
}
