//! A sign-in form's writes in one transaction (`FormStore::write_form`).

use valet_core::store::{ConsentGiven, FormWrite, FormWritten, InteractionChange, SessionStart};

use super::*;

fn interaction(id: &str, payload: &str) -> Interaction {
    Interaction {
        interaction_id: id.to_owned(),
        payload: payload.to_owned(),
        expires_at: NOW + 600,
    }
}

async fn write(store: &dyn Store, write: &FormWrite) -> FormWritten {
    store.write_form(write).await.expect("write form")
}

async fn live_session(store: &dyn Store, session_hash: &[u8]) -> bool {
    store
        .get_live_session(session_hash, NOW)
        .await
        .expect("get session")
        .is_some()
}

async fn interaction_payload(store: &dyn Store, id: &str) -> Option<String> {
    let found = store
        .get_interaction(id, NOW)
        .await
        .expect("get interaction");
    found.map(|interaction| interaction.payload)
}

/// The login form: a carried request is remembered as completed, the session
/// starts (ending the browser's old one) and the request moves on; the same
/// carried request again is refused and writes nothing, not even its session.
pub async fn forms_sign_in_once(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "form-login").await;
    let old = session_of(&party, &hash(&run, "old-session"), NOW + 3600);
    store
        .insert_session(&old)
        .await
        .expect("insert old session");
    let marker = format!("conf-{run}-carried");
    let login = FormWrite {
        interaction: Some(InteractionChange::Remember(interaction(&marker, "done"))),
        session: Some(SessionStart {
            session: session_of(&party, &hash(&run, "new-session"), NOW + 3600),
            ends: Some(old.session_hash.clone()),
        }),
        next: Some(interaction(&format!("conf-{run}-consent"), "consent")),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &login).await, FormWritten::Written);
    assert_eq!(
        interaction_payload(store, &marker).await.as_deref(),
        Some("done")
    );
    let next = format!("conf-{run}-consent");
    assert_eq!(
        interaction_payload(store, &next).await.as_deref(),
        Some("consent")
    );
    assert!(live_session(store, &hash(&run, "new-session")).await);
    assert!(
        !live_session(store, &old.session_hash).await,
        "the old session ended"
    );

    // The same login form again, from a second browser with a session of its own.
    let other = session_of(&party, &hash(&run, "other-session"), NOW + 3600);
    store
        .insert_session(&other)
        .await
        .expect("insert other session");
    let again = FormWrite {
        interaction: Some(InteractionChange::Remember(interaction(&marker, "again"))),
        session: Some(SessionStart {
            session: session_of(&party, &hash(&run, "replayed-session"), NOW + 3600),
            ends: Some(other.session_hash.clone()),
        }),
        next: Some(interaction(&format!("conf-{run}-consent-2"), "consent")),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &again).await, FormWritten::Refused);
    assert_eq!(
        interaction_payload(store, &marker).await.as_deref(),
        Some("done")
    );
    let second_next = format!("conf-{run}-consent-2");
    assert_eq!(interaction_payload(store, &second_next).await, None);
    assert!(!live_session(store, &hash(&run, "replayed-session")).await);
    assert!(
        live_session(store, &other.session_hash).await,
        "nothing ended"
    );

    // A session alone (the next step wrote nothing else), without an old one.
    let alone = FormWrite {
        session: Some(SessionStart {
            session: session_of(&party, &hash(&run, "alone"), NOW + 3600),
            ends: None,
        }),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &alone).await, FormWritten::Written);
    assert!(live_session(store, &hash(&run, "alone")).await);
    assert_eq!(
        write(store, &FormWrite::default()).await,
        FormWritten::Written
    );

    // A login form that goes straight back with a code (consent remembered):
    // the carried request completed, the session started, the old one ended,
    // the grant and its code stored.
    let grant = grant_of(
        &party,
        &format!("conf-{run}-login-grant"),
        None,
        NOW + 86_400,
    );
    let code = code_of(&grant, hash(&run, "login-code"), NOW + 60);
    let straight_back = FormWrite {
        interaction: Some(InteractionChange::Remember(interaction(
            &format!("conf-{run}-carried-2"),
            "done",
        ))),
        session: Some(SessionStart {
            session: session_of(&party, &hash(&run, "coded-session"), NOW + 3600),
            ends: Some(hash(&run, "alone")),
        }),
        grant: Some((grant.clone(), code)),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &straight_back).await, FormWritten::Written);
    assert!(live_session(store, &hash(&run, "coded-session")).await);
    assert!(
        !live_session(store, &hash(&run, "alone")).await,
        "the old session ended"
    );
    let family = store.get_code_family(&hash(&run, "login-code"), NOW).await;
    let family = family.expect("code family").expect("the code is stored");
    assert_eq!(family.grant, grant);
}

/// A stored interaction moves to another stage until it is completed.
pub async fn forms_update_interaction(store: &dyn Store) {
    let run = unique();
    let id = format!("conf-{run}-stored");
    store
        .insert_interaction(&interaction(&id, "first"))
        .await
        .expect("insert interaction");
    let update = |payload: &str| FormWrite {
        interaction: Some(InteractionChange::Update(interaction(&id, payload))),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &update("second")).await, FormWritten::Written);
    assert_eq!(
        interaction_payload(store, &id).await.as_deref(),
        Some("second")
    );
    assert!(store.delete_interaction(&id).await.expect("complete"));
    assert_eq!(write(store, &update("third")).await, FormWritten::Refused);
    let unknown = FormWrite {
        interaction: Some(InteractionChange::Update(interaction(
            &format!("conf-{run}-unknown"),
            "x",
        ))),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &unknown).await, FormWritten::Refused);
}

/// The consent form: the interaction completes, the consent is merged, and
/// the grant and its code are stored, once; a disabled user's grant is not.
pub async fn forms_consent_issues_once(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "form-consent").await;
    let (user_id, client_id) = (&party.user.user_id, &party.client.client_id);
    store
        .add_consent(user_id, client_id, &strings(&["a"]), NOW)
        .await
        .expect("earlier consent");
    let id = format!("conf-{run}-awaiting-consent");
    store
        .insert_interaction(&interaction(&id, "consent"))
        .await
        .expect("insert interaction");
    let consent_form = |label: &str| {
        let grant = grant_of(&party, &format!("conf-{run}-{label}"), None, NOW + 86_400);
        let code = code_of(&grant, hash(&run, &format!("{label}-code")), NOW + 60);
        FormWrite {
            interaction: Some(InteractionChange::Complete(id.clone())),
            consent: Some(ConsentGiven {
                user_id: user_id.clone(),
                client_id: client_id.clone(),
                scopes: strings(&["b", "a", "b"]),
                now: NOW,
            }),
            grant: Some((grant, code)),
            ..FormWrite::default()
        }
    };
    let allow = consent_form("grant");
    assert_eq!(write(store, &allow).await, FormWritten::Written);
    assert_eq!(interaction_payload(store, &id).await, None, "completed");
    let consent = store
        .get_consent(user_id, client_id)
        .await
        .expect("consent");
    assert_eq!(consent, strings(&["a", "b"]));
    let stored = store
        .get_code_family(&hash(&run, "grant-code"), NOW)
        .await
        .expect("code family")
        .expect("the code is stored");
    let (grant, _) = allow.grant.as_ref().expect("a grant");
    assert_eq!(&stored.grant, grant);

    let replay = consent_form("replayed");
    assert_eq!(write(store, &replay).await, FormWritten::Refused);
    let replayed_grant = format!("conf-{run}-replayed");
    assert_eq!(store.get_grant(&replayed_grant).await.expect("get"), None);
    let replayed_code = hash(&run, "replayed-code");
    let family = store.get_code_family(&replayed_code, NOW).await;
    assert!(family.expect("code family").is_none());

    // A user disabled meanwhile: what comes before the grant (the interaction,
    // a session, the consent) is written; the grant and its code are not.
    store
        .set_user_disabled(user_id, true, NOW)
        .await
        .expect("disable");
    let later = format!("conf-{run}-disabled-consent");
    store
        .insert_interaction(&interaction(&later, "consent"))
        .await
        .expect("insert interaction");
    let disabled = FormWrite {
        interaction: Some(InteractionChange::Complete(later.clone())),
        session: Some(SessionStart {
            session: session_of(&party, &hash(&run, "disabled-session"), NOW + 3600),
            ends: None,
        }),
        consent: Some(ConsentGiven {
            user_id: user_id.clone(),
            client_id: client_id.clone(),
            scopes: strings(&["c"]),
            now: NOW,
        }),
        ..consent_form("disabled")
    };
    assert_eq!(write(store, &disabled).await, FormWritten::UserDisabled);
    assert_eq!(interaction_payload(store, &later).await, None, "completed");
    let consent = store
        .get_consent(user_id, client_id)
        .await
        .expect("consent");
    assert_eq!(consent, strings(&["a", "b", "c"]));
    let session = store.delete_session(&hash(&run, "disabled-session")).await;
    assert!(
        session.expect("delete session").is_some(),
        "the session was stored"
    );
    let disabled_grant = format!("conf-{run}-disabled");
    assert_eq!(store.get_grant(&disabled_grant).await.expect("get"), None);
    let disabled_code = hash(&run, "disabled-code");
    let family = store.get_code_family(&disabled_code, NOW).await;
    assert!(family.expect("code family").is_none());
}

/// A record whose key is taken fails the whole write: the interaction's change
/// before it is undone.
pub async fn forms_conflict_writes_nothing(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "form-conflict").await;
    let taken = session_of(&party, &hash(&run, "taken"), NOW + 3600);
    store.insert_session(&taken).await.expect("insert session");
    let marker = format!("conf-{run}-carried");
    let login = FormWrite {
        interaction: Some(InteractionChange::Remember(interaction(&marker, "done"))),
        session: Some(SessionStart {
            session: taken,
            ends: None,
        }),
        ..FormWrite::default()
    };
    assert!(matches!(
        store.write_form(&login).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(interaction_payload(store, &marker).await, None);
    // Not remembered either: the form can still complete.
    let retried = FormWrite {
        interaction: Some(InteractionChange::Remember(interaction(&marker, "done"))),
        ..FormWrite::default()
    };
    assert_eq!(write(store, &retried).await, FormWritten::Written);
}

/// Double submission: of concurrent writes completing one interaction,
/// exactly one is written, with its grant.
pub async fn concurrent_form_completion(store: &dyn Store) {
    let run = unique();
    let party = party(store, &run, "form-race").await;
    let id = format!("conf-{run}-race");
    store
        .insert_interaction(&interaction(&id, "consent"))
        .await
        .expect("insert interaction");
    let writes: Vec<FormWrite> = (0..8)
        .map(|n| {
            let grant = grant_of(&party, &format!("conf-{run}-{n}"), None, NOW + 86_400);
            let code = code_of(&grant, hash(&run, &format!("{n}-code")), NOW + 60);
            FormWrite {
                interaction: Some(InteractionChange::Complete(id.clone())),
                grant: Some((grant, code)),
                ..FormWrite::default()
            }
        })
        .collect();
    let racers = writes
        .iter()
        .map(|w| Box::pin(store.write_form(w)) as BoxFuture<'_, Result<FormWritten, StoreError>>)
        .collect();
    let outcomes = join_all(racers).await;
    let mut written = 0;
    for (n, outcome) in outcomes.into_iter().enumerate() {
        let stored = store
            .get_grant(&format!("conf-{run}-{n}"))
            .await
            .expect("get grant");
        match outcome.expect("write form") {
            FormWritten::Written => {
                written += 1;
                assert!(stored.is_some(), "the winner's grant is stored");
            }
            FormWritten::Refused => {
                assert!(stored.is_none(), "a loser stores no grant");
                let code = hash(&run, &format!("{n}-code"));
                let family = store.get_code_family(&code, NOW).await;
                assert!(family.expect("code family").is_none(), "nor its code");
            }
            FormWritten::UserDisabled => panic!("the user is enabled"),
        }
    }
    assert_eq!(written, 1);
}
