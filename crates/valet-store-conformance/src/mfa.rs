//! Second factors: TOTP credentials and recovery codes.

use valet_core::store::TotpCredential;

use super::*;

fn pending(user_id: &str, secret: u8) -> TotpCredential {
    TotpCredential {
        user_id: user_id.to_owned(),
        sealed_secret: vec![secret; 40],
        sealed_recovery_codes: Some(vec![secret; 60]),
        confirmed_at: None,
        last_step: None,
        created_at: NOW,
    }
}

/// A pending credential is replaced by a new enrolment until one is
/// confirmed; confirming takes the pending secret it was checked against
/// (not one replaced meanwhile), drops the sealed recovery codes and stores
/// their hashes; a confirmed credential is not replaced.
pub async fn mfa_totp_enrolment(store: &dyn Store) {
    let run = unique();
    let user_id = format!("conf-{run}-totp");
    store.insert_user(&user(&user_id, NOW)).await.expect("user");
    assert_eq!(store.get_totp(&user_id).await.expect("get"), None);
    assert!(
        store
            .begin_totp(&pending(&user_id, 1))
            .await
            .expect("begin")
    );
    assert!(
        store
            .begin_totp(&pending(&user_id, 2))
            .await
            .expect("again")
    );
    assert_eq!(
        store.get_totp(&user_id).await.expect("get"),
        Some(pending(&user_id, 2))
    );
    let codes = vec![hash(&run, "rc1"), hash(&run, "rc2")];
    assert!(
        !store
            .confirm_totp(&user_id, &[1; 40], 7, &codes, NOW + 1)
            .await
            .expect("stale secret"),
        "a replaced enrolment does not confirm"
    );
    assert!(
        store
            .confirm_totp(&user_id, &[2; 40], 7, &codes, NOW + 1)
            .await
            .expect("confirm")
    );
    let confirmed = store.get_totp(&user_id).await.expect("get").expect("some");
    assert_eq!(confirmed.confirmed_at, Some(NOW + 1));
    assert_eq!(confirmed.last_step, Some(7));
    assert_eq!(confirmed.sealed_recovery_codes, None);
    assert_eq!(store.recovery_codes_left(&user_id).await.expect("left"), 2);
    assert!(
        !store
            .begin_totp(&pending(&user_id, 3))
            .await
            .expect("begin"),
        "a confirmed credential stays"
    );
    assert_eq!(
        store.get_totp(&user_id).await.expect("get"),
        Some(confirmed)
    );
}

/// A step is accepted only if later than the last; a recovery code once;
/// regeneration replaces the codes; deleting removes both; deleting the user
/// cascades.
pub async fn mfa_codes_once(store: &dyn Store) {
    let run = unique();
    let user_id = format!("conf-{run}-codes");
    store.insert_user(&user(&user_id, NOW)).await.expect("user");
    let codes = vec![hash(&run, "a"), hash(&run, "b")];
    assert!(
        !store
            .replace_recovery_codes(&user_id, &codes, NOW)
            .await
            .expect("replace"),
        "no codes without a confirmed credential"
    );
    assert!(!store.accept_totp_step(&user_id, 5).await.expect("step"));
    store
        .begin_totp(&pending(&user_id, 1))
        .await
        .expect("begin");
    assert!(!store.accept_totp_step(&user_id, 5).await.expect("pending"));
    store
        .confirm_totp(&user_id, &[1; 40], 10, &codes, NOW)
        .await
        .expect("confirm");
    assert!(!store.accept_totp_step(&user_id, 10).await.expect("same"));
    assert!(!store.accept_totp_step(&user_id, 9).await.expect("older"));
    assert!(store.accept_totp_step(&user_id, 11).await.expect("later"));
    assert!(!store.accept_totp_step(&user_id, 11).await.expect("again"));

    assert!(
        store
            .use_recovery_code(&user_id, &codes[0], NOW)
            .await
            .expect("use")
    );
    assert!(
        !store
            .use_recovery_code(&user_id, &codes[0], NOW)
            .await
            .expect("twice")
    );
    assert!(
        !store
            .use_recovery_code("nobody", &codes[1], NOW)
            .await
            .expect("other user")
    );
    assert_eq!(store.recovery_codes_left(&user_id).await.expect("left"), 1);
    let fresh = vec![hash(&run, "c")];
    assert!(
        store
            .replace_recovery_codes(&user_id, &fresh, NOW)
            .await
            .expect("replace")
    );
    assert!(
        !store
            .use_recovery_code(&user_id, &codes[1], NOW)
            .await
            .expect("old gone")
    );
    assert_eq!(store.recovery_codes_left(&user_id).await.expect("left"), 1);

    assert!(store.delete_second_factors(&user_id).await.expect("delete"));
    assert!(
        !store
            .delete_second_factors(&user_id)
            .await
            .expect("none left")
    );
    assert_eq!(store.get_totp(&user_id).await.expect("get"), None);
    assert_eq!(store.recovery_codes_left(&user_id).await.expect("left"), 0);

    store
        .begin_totp(&pending(&user_id, 1))
        .await
        .expect("begin");
    store
        .confirm_totp(&user_id, &[1; 40], 10, &fresh, NOW)
        .await
        .expect("confirm");
    assert!(store.delete_user(&user_id).await.expect("delete user"));
    assert_eq!(store.get_totp(&user_id).await.expect("get"), None);
    assert_eq!(store.recovery_codes_left(&user_id).await.expect("left"), 0);
}
