//! The people who sign in: administration (used by `valet user …`) and password
//! authentication for the login form.
//!
//! Passwords are hashed with argon2id ([`password`]); login attempts are
//! throttled by [`crate::throttle`], which the login endpoint consults before it
//! calls [`authenticate`].

pub mod password;

use crate::secrets::random_id;
use crate::store::{Store, StoreError, User, UserStore};

pub use password::{
    DEFAULT_MAX_WAITING, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, Overloaded, Password,
    PasswordError, PasswordHasher, WeakPassword, check_password_rules,
};

/// The longest username: enough for an email address's local part and then some.
pub const MAX_USERNAME_CHARS: usize = 64;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
pub const MAX_EMAIL_BYTES: usize = 254;
/// `name`, `given_name`, `family_name`.
pub const MAX_NAME_CHARS: usize = 200;

/// What an operator asks for. Checked by [`create_user`] before anything is stored.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `None`: the user cannot sign in with a password until one is set.
    pub password: Option<Password>,
}

/// A user that cannot be stored or changed, named by the CLI option at fault.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "--username {0:?}: must be 1 to 64 characters, each a letter (A-Z, a-z), a digit, '.', '_', '-' or '@'"
    )]
    InvalidUsername(String),
    #[error("--username {0}: already taken (as another user's username or email)")]
    UsernameTaken(String),
    #[error("--email {value:?}: {reason}")]
    InvalidEmail { value: String, reason: &'static str },
    #[error("--email {0}: already used by another user (as an email or username)")]
    EmailTaken(String),
    #[error("--email-verified: needs --email")]
    VerifiedWithoutEmail,
    #[error("{option}: {reason}")]
    InvalidName {
        option: &'static str,
        reason: &'static str,
    },
    #[error("--password-stdin: {0}")]
    WeakPassword(WeakPassword),
    /// Another user took the username or email between our check and the insert.
    #[error("--username/--email: a user with this username or email already exists")]
    Taken,
    #[error("{0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not generate a user id: {0}")]
    Random(String),
}

impl From<PasswordError> for UserError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Weak(weak) => Self::WeakPassword(weak),
            PasswordError::Hashing(_) | PasswordError::Overloaded { .. } => {
                Self::Hashing(error.to_string())
            }
        }
    }
}

/// Why a login failed. Deliberately one answer for an unknown login, a wrong
/// password, a user without a password and a disabled user, so the login form
/// does not reveal which accounts exist (OWASP Authentication Cheat Sheet,
/// "Authentication and Error Messages").
#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    #[error("invalid username or password")]
    InvalidCredentials {
        /// The id of the account the login named, if any: for the audit trail
        /// only, never for the answer.
        account: Option<String>,
    },
    /// The store failed: a server error, not the user's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many sign-ins wait for the password hasher: the password was not
    /// checked; the user may try again after `retry_after_seconds`.
    #[error("too many sign-ins at once; try again in {retry_after_seconds} s")]
    Overloaded { retry_after_seconds: i64 },
}

/// What disabling a user ended at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    pub grants: u64,
    pub sessions: u64,
}

pub async fn create_user(
    store: &dyn UserStore,
    hasher: &PasswordHasher,
    new: NewUser,
    now: i64,
) -> Result<User, UserError> {
    let username = new.username;
    check_username(&username)?;
    let email = new.email;
    if let Some(email) = &email {
        check_email(email)?;
    } else if new.email_verified {
        return Err(UserError::VerifiedWithoutEmail);
    }
    let name = clean_name("--name", new.name)?;
    let given_name = clean_name("--given-name", new.given_name)?;
    let family_name = clean_name("--family-name", new.family_name)?;
    if let Some(password) = &new.password {
        check_password_rules(password.expose()).map_err(UserError::WeakPassword)?;
    }
    // The store keeps usernames unique and emails unique; a username equal to
    // someone's email (or the reverse) would make a login ambiguous, so refuse
    // that too. Not atomic with the insert, but only operators create users.
    if store.find_user_by_login(&username).await?.is_some() {
        return Err(UserError::UsernameTaken(username));
    }
    if let Some(email) = &email
        && store.find_user_by_login(email).await?.is_some()
    {
        return Err(UserError::EmailTaken(email.clone()));
    }
    let password_hash = match &new.password {
        Some(password) => Some(hasher.hash(password.expose()).await?),
        None => None,
    };
    let user = User {
        user_id: random_id().map_err(|e| UserError::Random(e.to_string()))?,
        username,
        email,
        email_verified: new.email_verified,
        name,
        given_name,
        family_name,
        password_hash,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    match store.insert_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict) => Err(UserError::Taken),
        Err(error) => Err(error.into()),
    }
}

/// A user by `user_id`, or else by username or email (as the login form finds them).
pub async fn find_user(store: &dyn UserStore, key: &str) -> Result<Option<User>, StoreError> {
    if let Some(user) = store.get_user(key).await? {
        return Ok(Some(user));
    }
    store.find_user_by_login(key).await
}

/// Sets a new password (checking the rules) and ends the user's browser sessions,
/// so whoever signed in with the old password is signed out. Returns whether the
/// user exists.
pub async fn set_password(
    store: &dyn Store,
    hasher: &PasswordHasher,
    user_id: &str,
    password: &str,
    now: i64,
) -> Result<bool, UserError> {
    let hash = hasher.hash(password).await?;
    if !store.set_user_password(user_id, &hash, now).await? {
        return Ok(false);
    }
    store.delete_sessions_of_user(user_id).await?;
    Ok(true)
}

/// Disables or enables a user; `None` if there is no such user. Disabling also
/// revokes every grant of the user (their refresh tokens die at once, their access
/// tokens through the revocation list) and ends their sessions.
pub async fn set_disabled(
    store: &dyn Store,
    user_id: &str,
    disabled: bool,
    now: i64,
) -> Result<Option<Revoked>, UserError> {
    // The flag first: from here on no new login or grant can succeed.
    if !store.set_user_disabled(user_id, disabled, now).await? {
        return Ok(None);
    }
    if !disabled {
        return Ok(Some(Revoked::default()));
    }
    let grants = store.revoke_grants_of_user(user_id, now).await?;
    let sessions = store.delete_sessions_of_user(user_id).await?;
    Ok(Some(Revoked { grants, sessions }))
}

/// Deletes a user, after revoking their grants so their access tokens land on the
/// revocation list before the grants disappear. Returns whether the user existed.
pub async fn delete_user(store: &dyn Store, user_id: &str, now: i64) -> Result<bool, UserError> {
    store.revoke_grants_of_user(user_id, now).await?;
    Ok(store.delete_user(user_id).await?)
}

/// The login form's check: finds the user by username or email and verifies the
/// password. Exactly one argon2 verification runs whatever the outcome (against a
/// dummy hash when there is no user or no password), so the time taken does not
/// tell whether the account exists. Throttling is the caller's job
/// ([`crate::throttle::LoginThrottle`]).
pub async fn authenticate(
    store: &dyn UserStore,
    hasher: &PasswordHasher,
    login: &str,
    password: &str,
) -> Result<User, LoginFailure> {
    let login = login.trim();
    let user = if login.is_empty() || login.len() > MAX_EMAIL_BYTES {
        None
    } else {
        store.find_user_by_login(login).await?
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let matched = hasher
        .verify(stored, password)
        .await
        .map_err(|overloaded| LoginFailure::Overloaded {
            retry_after_seconds: overloaded.retry_after_seconds,
        })?;
    match user {
        Some(user) if matched && !user.disabled => Ok(user),
        other => Err(LoginFailure::InvalidCredentials {
            account: other.map(|user| user.user_id),
        }),
    }
}

fn check_username(username: &str) -> Result<(), UserError> {
    // ASCII only: a username is matched exactly, and Unicode would bring look-alike
    // and normalization variants of the same name. Display names may be Unicode.
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    let length = username.chars().count();
    if length == 0 || length > MAX_USERNAME_CHARS || !username.chars().all(allowed) {
        return Err(UserError::InvalidUsername(username.to_owned()));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), UserError> {
    let invalid = |reason| UserError::InvalidEmail {
        value: email.to_owned(),
        reason,
    };
    if email.len() > MAX_EMAIL_BYTES {
        return Err(invalid("must be at most 254 bytes"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must not contain spaces or control characters"));
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("must contain exactly one '@'"));
    };
    if local.is_empty() {
        return Err(invalid("needs a part before the '@'"));
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err(invalid("needs a domain with a dot after the '@'"));
    }
    Ok(())
}

/// Trims; an empty name is no name.
fn clean_name(option: &'static str, name: Option<String>) -> Result<Option<String>, UserError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(UserError::InvalidName {
            option,
            reason: "must be at most 200 characters",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(UserError::InvalidName {
            option,
            reason: "must not contain control characters",
        });
    }
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;

    /// Just enough of a user store for the functions that need only [`UserStore`].
    #[derive(Default)]
    struct Users(Mutex<Vec<User>>);

    #[async_trait]
    impl UserStore for Users {
        async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
            let mut users = self.0.lock().unwrap();
            let email = |u: &User| u.email.as_ref().map(|e| e.to_lowercase());
            if users.iter().any(|u| {
                u.user_id == user.user_id
                    || u.username == user.username
                    || (user.email.is_some() && email(u) == email(user))
            }) {
                return Err(StoreError::Conflict);
            }
            users.push(user.clone());
            Ok(())
        }
        async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
            let users = self.0.lock().unwrap();
            Ok(users.iter().find(|u| u.user_id == user_id).cloned())
        }
        async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
            let users = self.0.lock().unwrap();
            let by_name = users.iter().find(|u| u.username == login);
            let by_email = || {
                users.iter().find(|u| {
                    u.email
                        .as_ref()
                        .is_some_and(|e| e.to_lowercase() == login.to_lowercase())
                })
            };
            Ok(by_name.or_else(by_email).cloned())
        }
        async fn list_users(&self) -> Result<Vec<User>, StoreError> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn set_user_password(
            &self,
            user_id: &str,
            password_hash: &str,
            now: i64,
        ) -> Result<bool, StoreError> {
            let mut users = self.0.lock().unwrap();
            let user = users.iter_mut().find(|u| u.user_id == user_id);
            Ok(user
                .map(|u| {
                    u.password_hash = Some(password_hash.to_owned());
                    u.updated_at = now;
                })
                .is_some())
        }
        async fn set_user_disabled(
            &self,
            user_id: &str,
            disabled: bool,
            now: i64,
        ) -> Result<bool, StoreError> {
            let mut users = self.0.lock().unwrap();
            let user = users.iter_mut().find(|u| u.user_id == user_id);
            Ok(user
                .map(|u| {
                    u.disabled = disabled;
                    u.updated_at = now;
                })
                .is_some())
        }
        async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
            let mut users = self.0.lock().unwrap();
            let before = users.len();
            users.retain(|u| u.user_id != user_id);
            Ok(users.len() < before)
        }
        async fn set_user_unlocked(&self, _user_id: &str, _at: i64) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn login_unlocked_at(&self, _login: &str) -> Result<Option<i64>, StoreError> {
            Ok(None)
        }
    }

    fn alice() -> NewUser {
        NewUser {
            username: "alice".into(),
            email: Some("Alice@Example.com".into()),
            email_verified: true,
            name: Some("  Alice Liddell ".into()),
            given_name: Some("Alice".into()),
            family_name: Some(String::new()),
            password: Some(Password::new("looking-glass".into())),
        }
    }

    #[tokio::test]
    async fn create_and_authenticate() {
        let store = Users::default();
        let hasher = PasswordHasher::with_permits(2);
        let user = create_user(&store, &hasher, alice(), 100).await.unwrap();
        assert_eq!(user.username, "alice");
        assert_eq!(user.name.as_deref(), Some("Alice Liddell"));
        assert_eq!(user.family_name, None);
        assert_eq!(user.user_id.len(), 22);
        assert!(!format!("{user:?}").contains("argon2"));
        let hash = user.password_hash.as_deref().unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

        for login in ["alice", "alice@example.com", " ALICE@example.COM "] {
            let found = authenticate(&store, &hasher, login, "looking-glass").await;
            assert_eq!(found.unwrap().user_id, user.user_id, "{login}");
        }
        for (login, password) in [
            ("alice", "wrong password"),
            ("Alice", "looking-glass"),
            ("bob", "looking-glass"),
            ("", "looking-glass"),
        ] {
            assert!(matches!(
                authenticate(&store, &hasher, login, password).await,
                Err(LoginFailure::InvalidCredentials { .. })
            ));
        }
        assert_eq!(
            find_user(&store, &user.user_id).await.unwrap().unwrap(),
            user
        );
        assert_eq!(find_user(&store, "alice").await.unwrap().unwrap(), user);
        assert!(find_user(&store, "nobody").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn disabled_and_passwordless_users_fail_like_a_wrong_password() {
        let store = Users::default();
        let hasher = PasswordHasher::with_permits(2);
        let user = create_user(&store, &hasher, alice(), 100).await.unwrap();
        store
            .set_user_disabled(&user.user_id, true, 101)
            .await
            .unwrap();
        let failure = authenticate(&store, &hasher, "alice", "looking-glass")
            .await
            .unwrap_err();
        assert_eq!(failure.to_string(), "invalid username or password");

        let bob = NewUser {
            username: "bob".into(),
            ..NewUser::default()
        };
        let bob = create_user(&store, &hasher, bob, 100).await.unwrap();
        assert_eq!(bob.password_hash, None);
        assert!(matches!(
            authenticate(&store, &hasher, "bob", "").await,
            Err(LoginFailure::InvalidCredentials { .. })
        ));
    }

    #[tokio::test]
    async fn usernames_and_emails_do_not_collide() {
        let store = Users::default();
        let hasher = PasswordHasher::with_permits(2);
        create_user(&store, &hasher, alice(), 100).await.unwrap();
        let again = create_user(&store, &hasher, alice(), 100)
            .await
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            "--username alice: already taken (as another user's username or email)"
        );
        let same_email = NewUser {
            username: "alice2".into(),
            email: Some("ALICE@example.com".into()),
            ..NewUser::default()
        };
        let error = create_user(&store, &hasher, same_email, 100)
            .await
            .unwrap_err();
        assert!(matches!(error, UserError::EmailTaken(_)), "{error}");
        let username_is_an_email = NewUser {
            username: "alice@example.com".into(),
            ..NewUser::default()
        };
        let error = create_user(&store, &hasher, username_is_an_email, 100)
            .await
            .unwrap_err();
        assert!(matches!(error, UserError::UsernameTaken(_)), "{error}");
        let email_is_a_username = NewUser {
            username: "carol".into(),
            email: Some("alice".into()),
            ..NewUser::default()
        };
        let error = create_user(&store, &hasher, email_is_a_username, 100)
            .await
            .unwrap_err();
        assert!(matches!(error, UserError::InvalidEmail { .. }), "{error}");
    }

    #[tokio::test]
    async fn invalid_input_names_the_option() {
        let store = Users::default();
        let hasher = PasswordHasher::with_permits(2);
        let cases: Vec<(NewUser, &str)> = vec![
            (
                NewUser {
                    username: String::new(),
                    ..alice()
                },
                "--username",
            ),
            (
                NewUser {
                    email: Some("no-at-sign".into()),
                    ..alice()
                },
                "--email",
            ),
            (
                NewUser {
                    email: None,
                    ..alice()
                },
                "--email-verified",
            ),
            (
                NewUser {
                    given_name: Some("x".repeat(201)),
                    ..alice()
                },
                "--given-name",
            ),
            (
                NewUser {
                    family_name: Some("a\u{7}b".into()),
                    ..alice()
                },
                "--family-name",
            ),
            (
                NewUser {
                    password: Some(Password::new("short".into())),
                    ..alice()
                },
                "--password-stdin: the password must be at least 8 characters",
            ),
            (
                NewUser {
                    password: Some(Password::new("         ".into())),
                    ..alice()
                },
                "--password-stdin: the password must not consist only of whitespace",
            ),
        ];
        for (new, expected) in cases {
            let error = create_user(&store, &hasher, new, 100).await.unwrap_err();
            assert!(error.to_string().starts_with(expected), "{error}");
        }
        assert!(store.list_users().await.unwrap().is_empty());
    }

    #[test]
    fn username_rules() {
        for ok in ["a", "alice", "a.b-c_d@e", "A1", &"x".repeat(64)] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " alice",
            "alice ",
            "al ice",
            "alïce",
            "a/b",
            "a+b",
            &"x".repeat(65),
        ] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_rules() {
        for ok in ["a@b.c", "first.last+tag@mail.example.com", "ü@exämple.de"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@example.com", "x".repeat(243));
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@b@example.com",
            "a@localhost",
            "a@.example.com",
            "a@example.com.",
            "a b@example.com",
            "a@example.com\n",
            long.as_str(),
        ] {
            let Err(error) = check_email(bad) else {
                panic!("{bad:?} accepted");
            };
            assert!(error.to_string().starts_with("--email"), "{error}");
        }
        assert_eq!(long.len(), 255);
    }

    #[test]
    fn name_rules() {
        assert_eq!(clean_name("--name", None).unwrap(), None);
        assert_eq!(clean_name("--name", Some("   ".into())).unwrap(), None);
        assert_eq!(
            clean_name("--name", Some(" Zoë Ångström ".into())).unwrap(),
            Some("Zoë Ångström".into())
        );
        assert!(clean_name("--name", Some("ä".repeat(200))).is_ok());
        assert!(clean_name("--name", Some("ä".repeat(201))).is_err());
        assert!(clean_name("--name", Some("a\tb".into())).is_err());
    }
}
