//! The people who sign in: password authentication for the login form, and
//! the rules user records follow. Creating and changing users is the admin
//! service's (`admin::users`).
//!
//! Passwords are hashed with argon2id ([`password`]); login attempts are
//! throttled by [`crate::throttle`], which the login endpoint consults before it
//! calls [`authenticate`].

pub mod password;

use crate::store::{StoreError, User, UserStore};

pub use password::{
    DEFAULT_MAX_WAITING, HashCost, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, Overloaded, Password,
    PasswordError, PasswordHasher, WeakPassword, check_password_rules,
};

/// The longest username: enough for an email address's local part and then some.
pub const MAX_USERNAME_CHARS: usize = 64;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
pub const MAX_EMAIL_BYTES: usize = 254;
/// `name`, `given_name`, `family_name`.
pub const MAX_NAME_CHARS: usize = 200;

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
        Some(user) if matched && !user.disabled => {
            upgrade_hash(store, hasher, &user, password).await;
            Ok(user)
        }
        other => Err(LoginFailure::InvalidCredentials {
            account: other.map(|user| user.user_id),
        }),
    }
}

/// After a successful sign-in, replaces a hash made with weaker parameters than
/// today's (see [`PasswordHasher::should_upgrade`]), so raising the argon2
/// parameters reaches every user who signs in. Best effort: the sign-in
/// succeeds whatever happens here, and a password changed meanwhile is kept.
async fn upgrade_hash(store: &dyn UserStore, hasher: &PasswordHasher, user: &User, password: &str) {
    let Some(stored) = user.password_hash.as_deref() else {
        return;
    };
    if !hasher.should_upgrade(stored) {
        return;
    }
    let upgraded = match hasher.rehash(password).await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::info!(%error, "password hash not upgraded this time");
            return;
        }
    };
    match store
        .upgrade_password_hash(&user.user_id, stored, &upgraded)
        .await
    {
        Ok(true) => {
            tracing::info!(user = %user.user_id, "password hash upgraded to today's parameters")
        }
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "password hash not upgraded this time"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::admin::NewUser;
    use crate::admin::users::{find_user, insert_user as create_user};

    /// Just enough of a user store for the functions that need only [`UserStore`].
    #[derive(Default)]
    pub(crate) struct Users(Mutex<Vec<User>>);

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
        async fn upgrade_password_hash(
            &self,
            user_id: &str,
            expected: &str,
            upgraded: &str,
        ) -> Result<bool, StoreError> {
            let mut users = self.0.lock().unwrap();
            let user = users
                .iter_mut()
                .find(|u| u.user_id == user_id && u.password_hash.as_deref() == Some(expected));
            Ok(user
                .map(|u| u.password_hash = Some(upgraded.to_owned()))
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
        async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
            let mut users = self.0.lock().unwrap();
            let found = users.iter_mut().find(|u| u.user_id == user.user_id);
            Ok(found
                .map(|u| {
                    u.email.clone_from(&user.email);
                    u.email_verified = user.email_verified;
                    u.name.clone_from(&user.name);
                    u.given_name.clone_from(&user.given_name);
                    u.family_name.clone_from(&user.family_name);
                    u.updated_at = user.updated_at;
                })
                .is_some())
        }
        async fn set_user_unlocked(&self, _user_id: &str, _at: i64) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn login_unlocked_at(&self, _login: &str) -> Result<Option<i64>, StoreError> {
            Ok(None)
        }
    }

    pub(crate) fn alice() -> NewUser {
        NewUser {
            username: "alice".into(),
            email: Some("Alice@Example.com".into()),
            email_verified: true,
            name: Some("  Alice Liddell ".into()),
            given_name: Some("Alice".into()),
            family_name: Some(String::new()),
            password: Some(Password::new("looking-glass".into())),
            admin: false,
        }
    }

    /// A hash made with weaker parameters is replaced at the next successful
    /// sign-in (and still verifies); a failed sign-in changes nothing.
    #[tokio::test]
    async fn a_sign_in_upgrades_a_weaker_hash() {
        let store = Users::default();
        let cheap = PasswordHasher::with_cost(1, 4, HashCost::InsecureBenchmark);
        let user = create_user(&store, &cheap, alice(), 100).await.unwrap();
        let weak = user.password_hash.clone().unwrap();
        assert!(weak.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));

        let standard = PasswordHasher::with_permits(2);
        assert!(
            authenticate(&store, &standard, "alice", "wrong")
                .await
                .is_err()
        );
        let stored = |store: &Users| {
            store
                .0
                .lock()
                .unwrap()
                .first()
                .unwrap()
                .password_hash
                .clone()
                .unwrap()
        };
        assert_eq!(stored(&store), weak, "a failed sign-in changes nothing");

        authenticate(&store, &standard, "alice", "looking-glass")
            .await
            .unwrap();
        let upgraded = stored(&store);
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{upgraded}"
        );
        assert_eq!(
            store.0.lock().unwrap().first().unwrap().updated_at,
            user.updated_at
        );
        authenticate(&store, &standard, "alice", "looking-glass")
            .await
            .unwrap();
        assert_eq!(stored(&store), upgraded, "upgraded once");
        // A benchmark-mode server never weakens it again.
        authenticate(&store, &cheap, "alice", "looking-glass")
            .await
            .unwrap();
        assert_eq!(stored(&store), upgraded);
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
}
