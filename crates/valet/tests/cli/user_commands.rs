//! `valet user …`, and the user operations of the admin service
//! (`valet_core::admin`) against a real SQLite store (they cannot be tested
//! inside valet-core: the store crates depend on it).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use valet_core::ManualClock;
use valet_core::admin::{Actor, Admin, AdminError, NewClient, NewUser, Resource};
use valet_core::audit::{AuditFilter, AuditKind};
use valet_core::store::{
    AuditStore, AuthorizationCode, Grant, GrantStore, MfaStore, PasskeyRecord, PasskeyStore,
    RevocationStore, Session, SessionStore, TotpCredential, UserStore,
};
use valet_core::users::{LoginFailure, Password, PasswordHasher, authenticate};
use valet_store_sqlite::SqliteStore;

use crate::harness::*;

const PASSWORD: &str = "Tr0ub4dor&3-horse";
const NEW_PASSWORD: &str = "correct-horse-battery-staple";

/// Runs `command` with `input` on its standard input.
fn with_stdin(mut command: Command, input: &str) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn user(dir: &Path, args: &[&str]) -> Command {
    let mut command = valet(dir);
    command.arg("user").args(args);
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No password and no hash in anything the CLI printed.
fn assert_no_secrets(outputs: &[Output]) {
    for out in outputs {
        let text = text(out);
        for secret in [PASSWORD, NEW_PASSWORD, "$argon2", "password_hash"] {
            assert!(!text.contains(secret), "{secret:?} printed: {text}");
        }
    }
}

#[test]
fn user_lifecycle_through_the_cli() {
    let dir = init_dir("users");
    let mut outputs = Vec::new();

    let created = with_stdin(
        user(
            &dir,
            &[
                "create",
                "--username",
                "alice",
                "--email",
                "Alice@Example.test",
                "--email-verified",
                "--name",
                "Alice Liddell",
                "--given-name",
                "Alice",
                "--password-stdin",
                "--json",
            ],
        ),
        &format!("{PASSWORD}\n"),
    );
    assert!(created.status.success(), "{}", text(&created));
    let json = stdout_json(&created);
    let id = json["user_id"].as_str().unwrap().to_owned();
    assert_eq!(json["username"], "alice");
    assert_eq!(json.as_object().unwrap().len(), 2, "{json}");
    outputs.push(created);

    // Human-readable creation, without --json.
    let bob = with_stdin(
        user(&dir, &["create", "--username", "bob", "--password-stdin"]),
        NEW_PASSWORD,
    );
    assert!(bob.status.success(), "{}", text(&bob));
    assert!(text(&bob).contains("Created user bob"), "{}", text(&bob));
    outputs.push(bob);

    let list = run_ok(user(&dir, &["list", "--json"]));
    let users = stdout_json(&list);
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    let alice = users.iter().find(|u| u["user_id"] == id.as_str()).unwrap();
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "Alice@Example.test");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["name"], "Alice Liddell");
    assert_eq!(alice["given_name"], "Alice");
    assert_eq!(alice["family_name"], serde_json::Value::Null);
    assert_eq!(alice["has_password"], true);
    assert_eq!(alice["disabled"], false);
    assert!(alice.get("password_hash").is_none());
    outputs.push(list);
    let table = run_ok(user(&dir, &["list"]));
    assert!(text(&table).contains("alice") && text(&table).contains("bob"));
    outputs.push(table);

    // By user_id, username, or email in any case.
    for key in [id.as_str(), "alice", "alice@example.TEST"] {
        let shown = run_ok(user(&dir, &["show", key, "--json"]));
        assert_eq!(stdout_json(&shown)["user_id"], id.as_str(), "{key}");
        outputs.push(shown);
    }
    let shown = run_ok(user(&dir, &["show", "alice"]));
    let shown_text = text(&shown);
    assert!(
        shown_text.contains(&id) && shown_text.contains("(verified)"),
        "{shown_text}"
    );
    outputs.push(shown);

    let disabled = run_ok(user(&dir, &["disable", "alice"]));
    assert!(text(&disabled).contains("Disabled user alice"));
    outputs.push(disabled);
    let shown = run_ok(user(&dir, &["show", &id, "--json"]));
    assert_eq!(stdout_json(&shown)["disabled"], true);
    outputs.push(shown);
    let enabled = run_ok(user(&dir, &["enable", "alice@example.test"]));
    outputs.push(enabled);
    let shown = run_ok(user(&dir, &["show", &id, "--json"]));
    assert_eq!(stdout_json(&shown)["disabled"], false);
    let updated_before = stdout_json(&shown)["updated_at"].as_i64().unwrap();
    outputs.push(shown);

    // A Windows line ending is one newline too.
    let changed = with_stdin(
        user(&dir, &["set-password", "alice", "--password-stdin"]),
        &format!("{NEW_PASSWORD}\r\n"),
    );
    assert!(changed.status.success(), "{}", text(&changed));
    outputs.push(changed);
    let shown = run_ok(user(&dir, &["show", &id, "--json"]));
    assert!(stdout_json(&shown)["updated_at"].as_i64().unwrap() >= updated_before);
    outputs.push(shown);

    // The new password is the one stored, with exactly the newline removed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = dir.join("valet-data").join("valet.db");
    runtime.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let hasher = PasswordHasher::with_permits(1);
        let found = authenticate(&store, &hasher, "alice", NEW_PASSWORD).await;
        assert_eq!(found.unwrap().user_id, id);
        assert!(
            authenticate(&store, &hasher, "alice", PASSWORD)
                .await
                .is_err()
        );
        let bob = authenticate(&store, &hasher, "bob", NEW_PASSWORD).await;
        assert_eq!(bob.unwrap().username, "bob");
        store.close().await;
    });

    let deleted = run_ok(user(&dir, &["delete", "alice"]));
    assert!(text(&deleted).contains("Deleted user alice"));
    outputs.push(deleted);
    let missing = user(&dir, &["show", &id]).output().unwrap();
    assert!(!missing.status.success());
    assert!(text(&missing).contains("no user"), "{}", text(&missing));
    outputs.push(missing);
    let missing = user(&dir, &["disable", "alice"]).output().unwrap();
    assert!(!missing.status.success());
    outputs.push(missing);

    assert_no_secrets(&outputs);
    // Nor in anything on disk.
    for entry in std::fs::read_dir(dir.join("valet-data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for secret in [PASSWORD, NEW_PASSWORD] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a password is stored in clear"
            );
        }
    }
}

#[test]
fn bad_user_input_names_the_option() {
    let dir = init_dir("bad-users");
    let ok = with_stdin(
        user(
            &dir,
            &[
                "create",
                "--username",
                "alice",
                "--email",
                "a@example.test",
                "--password-stdin",
            ],
        ),
        PASSWORD,
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let cases: [(&[&str], &str, &str); 10] = [
        (&["--username", "al ice"], PASSWORD, "--username"),
        (&["--username", ""], PASSWORD, "--username"),
        (
            &["--username", "bob", "--email", "bob"],
            PASSWORD,
            "--email",
        ),
        (
            &["--username", "bob", "--email", "b@localhost"],
            PASSWORD,
            "--email",
        ),
        (
            &["--username", "bob", "--email-verified"],
            PASSWORD,
            "--email-verified",
        ),
        (
            &["--username", "bob", "--name", "a\u{1b}[2Jb"],
            PASSWORD,
            "--name",
        ),
        (
            &["--username", "bob"],
            "short\n",
            "--password-stdin: the password must be at least 8 characters",
        ),
        (
            &["--username", "bob"],
            "          \n",
            "--password-stdin: the password must not consist only of whitespace",
        ),
        (
            &["--username", "alice"],
            PASSWORD,
            "--username alice: already taken",
        ),
        (
            &["--username", "bob", "--email", "A@EXAMPLE.test"],
            PASSWORD,
            "--email A@EXAMPLE.test: already used",
        ),
    ];
    let mut outputs = vec![ok];
    for (args, input, expected) in cases {
        let mut command = user(&dir, &["create"]);
        command.args(args).arg("--password-stdin");
        let out = with_stdin(command, input);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        outputs.push(out);
    }
    let long = "x".repeat(1025);
    let out = with_stdin(
        user(&dir, &["create", "--username", "bob", "--password-stdin"]),
        &long,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 1024 bytes"));

    // No password on stdin unless asked for; never as an argument.
    let out = user(&dir, &["create", "--username", "bob"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    let out = user(
        &dir,
        &["create", "--username", "bob", "--password", PASSWORD],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let out = with_stdin(
        user(&dir, &["set-password", "alice", "--password-stdin"]),
        "short",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    outputs.push(out);
    let out = with_stdin(
        user(&dir, &["set-password", "nobody", "--password-stdin"]),
        NEW_PASSWORD,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user"));
    outputs.push(out);

    let list = stdout_json(&run_ok(user(&dir, &["list", "--json"])));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_no_secrets(&outputs);
}

/// Disabling a user revokes their grants and ends their sessions at once; deleting
/// one revokes their grants first, so their access tokens land on the revocation
/// list.
#[tokio::test]
async fn disabling_and_deleting_revoke_what_was_issued() {
    let dir = temp_dir("users-revoke");
    let store = SqliteStore::open(&dir.join("valet.db")).await.unwrap();
    let hasher = PasswordHasher::with_permits(1);
    let now = 1_800_000_000;
    let clock = ManualClock::new(now);
    let admin = Admin::new(&store, &clock, &hasher, 3600, Actor::cli());
    let new = NewUser {
        username: "carol".into(),
        email: Some("carol@example.test".into()),
        password: Some(Password::new(PASSWORD.into())),
        ..NewUser::default()
    };
    let carol = admin.create_user(new).await.unwrap();
    let client = admin
        .register_client(NewClient {
            name: "web".into(),
            redirect_uris: vec!["https://app.example.test/cb".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .client;

    let issue = |n: u8| {
        let grant = Grant {
            grant_id: format!("grant-{n}"),
            client_id: client.client_id.clone(),
            user_id: carol.user_id.clone(),
            scope: vec!["openid".into()],
            sid: Some(format!("sid-{n}")),
            auth_time: now,
            amr: vec!["pwd".into()],
            created_at: now,
            expires_at: now + 86_400,
            revoked_at: None,
            status_idx: None,
            resources: vec![],
        };
        let code = AuthorizationCode {
            code_hash: vec![n; 32],
            grant_id: grant.grant_id.clone(),
            client_id: client.client_id.clone(),
            redirect_uri: "https://app.example.test/cb".into(),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            nonce: None,
            scope: grant.scope.clone(),
            resources: vec![],
            created_at: now,
            expires_at: now + 60,
            consumed_at: None,
            dpop_jkt: None,
        };
        let session = Session {
            session_hash: vec![n + 100; 32],
            sid: format!("sid-{n}"),
            user_id: carol.user_id.clone(),
            auth_time: now,
            amr: vec!["pwd".into()],
            created_at: now,
            expires_at: now + 3600,
        };
        (grant, code, session)
    };
    let (grant, code, session) = issue(1);
    store.insert_grant_with_code(&grant, &code).await.unwrap();
    store.insert_session(&session).await.unwrap();
    store
        .record_issued(&grant.grant_id, "jti-1", now + 600, None)
        .await
        .unwrap();

    clock.set(now + 1);
    let revoked = admin.disable_user(&carol.user_id).await.unwrap().revoked;
    assert_eq!((revoked.grants, revoked.sessions), (1, 1));
    let grant_now = store.get_grant(&grant.grant_id).await.unwrap();
    assert!(grant_now.is_none_or(|g| g.revoked_at.is_some()));
    assert!(store.is_revoked("jti-1").await.unwrap());
    // The session is deleted, not only no longer live: enabling the user again
    // does not bring it back.
    assert!(
        store
            .delete_session(&session.session_hash)
            .await
            .unwrap()
            .is_none()
    );
    // A disabled user cannot sign in, with the same answer as a wrong password.
    assert!(matches!(
        authenticate(&store, &hasher, "carol", PASSWORD).await,
        Err(LoginFailure::InvalidCredentials { .. })
    ));
    clock.set(now + 3);
    assert!(!admin.enable_user("carol").await.unwrap().user.disabled);
    authenticate(&store, &hasher, "carol@EXAMPLE.test", PASSWORD)
        .await
        .unwrap();

    // A new password ends the sessions signed in with the old one.
    let (grant, code, session) = issue(2);
    store.insert_grant_with_code(&grant, &code).await.unwrap();
    store.insert_session(&session).await.unwrap();
    clock.set(now + 4);
    admin
        .set_user_password(&carol.user_id, &Password::new(NEW_PASSWORD.into()))
        .await
        .unwrap();
    assert!(
        store
            .get_live_session(&session.session_hash, now + 5)
            .await
            .unwrap()
            .is_none()
    );
    store
        .record_issued(&grant.grant_id, "jti-2", now + 600, None)
        .await
        .unwrap();

    clock.set(now + 6);
    admin.delete_user(&carol.user_id).await.unwrap();
    assert!(store.is_revoked("jti-2").await.unwrap());
    assert!(store.get_user(&carol.user_id).await.unwrap().is_none());
    fn gone<T>(result: Result<T, AdminError>) -> bool {
        matches!(
            result,
            Err(AdminError::NotFound {
                resource: Resource::User,
                ..
            })
        )
    }
    assert!(gone(admin.delete_user(&carol.user_id).await));
    assert!(gone(admin.disable_user(&carol.user_id).await));
    assert!(gone(
        admin
            .set_user_password(&carol.user_id, &Password::new(NEW_PASSWORD.into()))
            .await
    ));
    // Each change was audited once, by the CLI.
    let events = store
        .audit_events(&valet_core::audit::AuditFilter {
            user_id: Some(carol.user_id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().rev().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "user.created",
            "user.disabled",
            "user.enabled",
            "user.password_set",
            "user.deleted"
        ]
    );
    assert!(events.iter().all(|e| e.detail["via"] == "cli"));
    store.close().await;
}

/// `valet user update`: changes the email (unverified unless said otherwise)
/// and names, '' removes a field, a taken email or bad value names its flag and
/// changes nothing, and each change is audited as `user.updated`.
#[test]
fn user_update_through_the_cli() {
    let dir = init_dir("user-update");
    for name in ["alice", "bob"] {
        create_user_with(valet(&dir), &[], name, PASSWORD);
    }
    let updated = stdout_json(&run_ok(user(
        &dir,
        &[
            "update",
            "alice",
            "--email",
            "alice@new.example",
            "--name",
            "Alice Liddell",
            "--json",
        ],
    )));
    assert_eq!(
        updated["changed"],
        serde_json::json!(["email", "email_verified", "name"])
    );
    assert_eq!(updated["user"]["email"], "alice@new.example");
    assert_eq!(updated["user"]["email_verified"], false);

    let out = run_ok(user(
        &dir,
        &[
            "update",
            "alice@new.example",
            "--email-verified",
            "--name",
            "",
        ],
    ));
    let text = text(&out);
    assert!(
        text.contains("Updated user alice: email_verified, name"),
        "{text}"
    );
    assert!(text.contains("alice@new.example (verified)"), "{text}");

    let cases: [(&[&str], &str); 3] = [
        (
            &["--email", "BOB@example.test"],
            "--email BOB@example.test: already used by another user",
        ),
        (
            &["--email", "nobody"],
            "--email \"nobody\": must contain exactly one '@'",
        ),
        (
            &["--family-name", "a\u{7}b"],
            "--family-name: must not contain control characters",
        ),
    ];
    for (args, expected) in cases {
        let mut command = user(&dir, &["update", "alice"]);
        command.args(args);
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = user(&dir, &["update", "nobody", "--name", "x"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no user with id, username or email nobody")
    );

    let shown = stdout_json(&run_ok(user(&dir, &["show", "alice", "--json"])));
    assert_eq!(shown["email"], "alice@new.example");
    assert_eq!(shown["email_verified"], true);
    assert_eq!(shown["name"], serde_json::Value::Null);
    assert_eq!(shown["has_password"], true);

    let mut audit = valet(&dir);
    audit.args([
        "audit",
        "--type",
        "user.updated",
        "--user",
        "alice",
        "--json",
    ]);
    let audit = run_ok(audit);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains("\"via\":\"cli\""), "{audit}");
}

/// `valet user mfa reset`: a lost authenticator. The user's TOTP credential
/// and recovery codes go, their sessions end, and the reset is audited.
#[test]
fn mfa_reset_removes_the_second_factors_and_ends_sessions() {
    let dir = init_dir("mfa-reset");
    let created = with_stdin(
        user(
            &dir,
            &[
                "create",
                "--username",
                "alice",
                "--password-stdin",
                "--json",
            ],
        ),
        PASSWORD,
    );
    assert!(created.status.success(), "{}", text(&created));
    let id = stdout_json(&created)["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = dir.join("valet-data").join("valet.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let pending = TotpCredential {
            user_id: id.clone(),
            sealed_secret: vec![1; 48],
            sealed_recovery_codes: Some(vec![2; 48]),
            confirmed_at: None,
            last_step: None,
            created_at: 1,
        };
        assert!(store.begin_totp(&pending).await.unwrap());
        let hashes = vec![vec![3; 32], vec![4; 32]];
        assert!(
            store
                .confirm_totp(&id, &pending.sealed_secret, 10, &hashes, 2)
                .await
                .unwrap()
        );
        store
            .insert_passkey(&PasskeyRecord {
                credential_id: vec![6; 16],
                user_id: id.clone(),
                user_handle: "6f1c2f7e-0000-4000-8000-000000000001".into(),
                name: "laptop".into(),
                passkey: "{}".into(),
                sign_count: 0,
                backup_eligible: false,
                backed_up: false,
                created_at: 2,
                last_used_at: None,
            })
            .await
            .unwrap();
        store
            .insert_session(&Session {
                session_hash: vec![5; 32],
                sid: "sid-1".into(),
                user_id: id.clone(),
                auth_time: 2,
                amr: vec!["pwd".into(), "otp".into()],
                created_at: 2,
                expires_at: i64::MAX,
            })
            .await
            .unwrap();
        store.close().await;
    });

    let reset = run_ok(user(&dir, &["mfa", "reset", "alice"]));
    assert!(
        text(&reset).contains("Removed the second factors of alice"),
        "{}",
        text(&reset)
    );
    let again = run_ok(user(&dir, &["mfa", "reset", &id]));
    assert!(
        text(&again).contains("had no second factor"),
        "{}",
        text(&again)
    );
    let missing = user(&dir, &["mfa", "reset", "nobody"]).output().unwrap();
    assert!(!missing.status.success());

    runtime.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        assert_eq!(store.get_totp(&id).await.unwrap(), None);
        assert_eq!(store.recovery_codes_left(&id).await.unwrap(), 0);
        assert!(!store.use_recovery_code(&id, &[3; 32], 3).await.unwrap());
        assert_eq!(store.get_live_session(&[5; 32], 3).await.unwrap(), None);
        assert!(
            store.list_passkeys(&id).await.unwrap().is_empty(),
            "passkeys removed"
        );
        let events = store
            .audit_events(&AuditFilter {
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let resets: Vec<_> = events
            .iter()
            .filter(|e| e.event == AuditKind::MfaReset)
            .collect();
        assert_eq!(resets.len(), 2, "{events:?}");
        assert_eq!(resets[0].user_id.as_deref(), Some(id.as_str()));
        store.close().await;
    });
}

#[test]
fn the_admin_role_is_given_and_taken_through_the_cli() {
    let dir = init_dir("user-admin");
    let out = with_stdin(
        user(
            &dir,
            &["create", "--username", "ops", "--admin", "--password-stdin"],
        ),
        PASSWORD,
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = stdout_json(&run_ok(user(&dir, &["show", "ops", "--json"])));
    assert_eq!(shown["admin"], true);
    assert!(text(&run_ok(user(&dir, &["show", "ops"]))).contains("admin:         yes"));

    create_user_with(valet(&dir), &[], "alice", PASSWORD);
    assert!(text(&run_ok(user(&dir, &["show", "alice"]))).contains("admin:         no"));
    let updated = stdout_json(&run_ok(user(
        &dir,
        &["update", "alice", "--admin", "--json"],
    )));
    assert_eq!(updated["changed"], serde_json::json!(["admin"]));
    assert_eq!(updated["user"]["admin"], true);
    let updated = stdout_json(&run_ok(user(
        &dir,
        &["update", "alice", "--no-admin", "--json"],
    )));
    assert_eq!(updated["user"]["admin"], false);

    let both = user(&dir, &["update", "alice", "--admin", "--no-admin"])
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        text(&both).contains("cannot be used with"),
        "{}",
        text(&both)
    );
}
