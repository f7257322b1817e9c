//! Users: create, list, get (by id, username or email), update, disable,
//! enable, unlock, set the password, delete.

use serde::Serialize;

use super::paging::{Page, PageRequest};
use super::{Admin, AdminError, Field, Resource};
use crate::audit::{AuditEvent, AuditKind};
use crate::secrets::random_id;
use crate::store::{StoreError, User, UserPageQuery, UserStore};
use crate::users::{
    MAX_EMAIL_BYTES, MAX_NAME_CHARS, MAX_USERNAME_CHARS, Password, PasswordError, PasswordHasher,
    check_password_rules,
};

/// A new user. Checked before anything is stored.
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
    /// May use the web console at `/admin`.
    pub admin: bool,
}

/// A change to a user's profile; `None` leaves a field as it is, `Some(None)`
/// (or an empty name) removes it. A new email is unverified unless
/// `email_verified` says otherwise. The username is fixed.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub name: Option<Option<String>>,
    pub given_name: Option<Option<String>>,
    pub family_name: Option<Option<String>>,
    /// May use the web console at `/admin`.
    pub admin: Option<bool>,
}

/// A user as the admin interfaces show it: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserRecord {
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub has_password: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// May use the web console at `/admin`.
    pub admin: bool,
}

impl From<&User> for UserRecord {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            name: user.name.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            has_password: user.password_hash.is_some(),
            disabled: user.disabled,
            created_at: user.created_at,
            updated_at: user.updated_at,
            admin: user.admin,
        }
    }
}

/// What a change ended at once (disabling ends grants and sessions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub grants: u64,
    pub sessions: u64,
}

/// A user after a change, and what the change revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChangedUser {
    pub user: UserRecord,
    pub revoked: Revoked,
    /// The fields an update changed, by name (empty for other changes).
    #[schema(value_type = Vec<String>)]
    pub changed: Vec<&'static str>,
}

impl ChangedUser {
    fn of(user: &User) -> Self {
        Self {
            user: UserRecord::from(user),
            revoked: Revoked::default(),
            changed: Vec::new(),
        }
    }
}

impl Admin<'_> {
    /// Creates a user; audited as `user.created`.
    pub async fn create_user(&self, new: NewUser) -> Result<UserRecord, AdminError> {
        let now = self.now();
        let user = insert_user(self.store, self.hasher, new, now).await?;
        self.record(
            AuditEvent::new(AuditKind::UserCreated, now)
                .user(&user.user_id)
                .detail("username", user.username.as_str()),
        )
        .await;
        Ok(UserRecord::from(&user))
    }

    /// All users, oldest first.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, AdminError> {
        let users = self.store.list_users().await?;
        Ok(users.iter().map(UserRecord::from).collect())
    }

    /// A page of users, oldest first (by creation time, then id).
    pub async fn list_users_page(
        &self,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>, AdminError> {
        let limit = page.limit()?;
        let query = UserPageQuery {
            after: page.after()?,
            limit: u32::try_from(limit.saturating_add(1)).unwrap_or(u32::MAX),
            ..UserPageQuery::default()
        };
        let users = self.store.list_users_page(&query).await?;
        let records = users.iter().map(UserRecord::from).collect();
        Ok(PageRequest::finish(limit, records, |user: &UserRecord| {
            (user.created_at, user.user_id.as_str())
        }))
    }

    /// Users whose username or email contains `search` (ignoring case; all
    /// users when it is empty), oldest first: at most `limit` after skipping
    /// `offset`, and how many match in all. Searched in the store.
    pub async fn search_users(
        &self,
        search: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(Vec<UserRecord>, u64), AdminError> {
        let search = (!search.is_empty()).then(|| search.to_owned());
        let total = self.store.count_users(search.as_deref()).await?;
        let query = UserPageQuery {
            search,
            offset,
            limit,
            ..UserPageQuery::default()
        };
        let users = self.store.list_users_page(&query).await?;
        Ok((users.iter().map(UserRecord::from).collect(), total))
    }

    /// A user by `user_id`, or else by username or email (as the login form
    /// finds them).
    pub async fn get_user(&self, key: &str) -> Result<UserRecord, AdminError> {
        Ok(UserRecord::from(&self.stored_user(key).await?))
    }

    async fn stored_user(&self, key: &str) -> Result<User, AdminError> {
        find_user(self.store, key)
            .await?
            .ok_or_else(|| AdminError::not_found(Resource::User, key))
    }

    /// Changes a user's email and profile, checked as at creation; audited as
    /// `user.updated` with the changed fields. Nothing is revoked: tokens already
    /// issued keep the claims they carry until they expire.
    pub async fn update_user(
        &self,
        key: &str,
        update: UserUpdate,
    ) -> Result<ChangedUser, AdminError> {
        let now = self.now();
        let stored = self.stored_user(key).await?;
        let (updated, changed) = apply(&stored, update)?;
        if let Some(email) = &updated.email
            && stored.email.as_deref() != Some(email.as_str())
        {
            let holder = self.store.find_user_by_login(email).await?;
            if holder.is_some_and(|other| other.user_id != stored.user_id) {
                return Err(email_taken(email));
            }
        }
        if changed.is_empty() {
            return Ok(ChangedUser::of(&stored));
        }
        let updated = User {
            updated_at: now,
            ..updated
        };
        match self.store.update_user(&updated).await {
            Ok(true) => {}
            Ok(false) => return Err(AdminError::not_found(Resource::User, key)),
            Err(StoreError::Conflict) => return Err(taken()),
            Err(error) => return Err(error.into()),
        }
        self.record(
            AuditEvent::new(AuditKind::UserUpdated, now)
                .user(&updated.user_id)
                .detail("changed", changed.join(" ")),
        )
        .await;
        Ok(ChangedUser {
            changed,
            ..ChangedUser::of(&updated)
        })
    }

    /// Disables a user: sign-in is refused from now on, and every grant of the
    /// user (refresh tokens at once, access tokens through the revocation list)
    /// and every session ends. Audited as `user.disabled`.
    pub async fn disable_user(&self, key: &str) -> Result<ChangedUser, AdminError> {
        let now = self.now();
        let user = self.stored_user(key).await?;
        // The flag first: from here on no new login or grant can succeed.
        if !self
            .store
            .set_user_disabled(&user.user_id, true, now)
            .await?
        {
            return Err(AdminError::not_found(Resource::User, &user.user_id));
        }
        let grants = self.store.revoke_grants_of_user(&user.user_id, now).await?;
        let sessions = self.store.delete_sessions_of_user(&user.user_id).await?;
        self.record(
            AuditEvent::new(AuditKind::UserDisabled, now)
                .user(&user.user_id)
                .detail("revoked_grants", grants)
                .detail("ended_sessions", sessions),
        )
        .await;
        Ok(ChangedUser {
            revoked: Revoked { grants, sessions },
            ..ChangedUser::of(&User {
                disabled: true,
                updated_at: now,
                ..user
            })
        })
    }

    /// Enables a disabled user again; audited as `user.enabled`.
    pub async fn enable_user(&self, key: &str) -> Result<ChangedUser, AdminError> {
        let now = self.now();
        let user = self.stored_user(key).await?;
        if !self
            .store
            .set_user_disabled(&user.user_id, false, now)
            .await?
        {
            return Err(AdminError::not_found(Resource::User, &user.user_id));
        }
        self.record(AuditEvent::new(AuditKind::UserEnabled, now).user(&user.user_id))
            .await;
        Ok(ChangedUser::of(&User {
            disabled: false,
            updated_at: now,
            ..user
        }))
    }

    /// Marks the user's email address as verified, as a verification link
    /// would; audited as `user.email_verified`. Refused for a user without an
    /// email address.
    pub async fn verify_email(&self, key: &str) -> Result<UserRecord, AdminError> {
        let now = self.now();
        let stored = self.stored_user(key).await?;
        if stored.email.is_none() {
            return Err(verified_without_email());
        }
        if stored.email_verified {
            return Ok(UserRecord::from(&stored));
        }
        let verified = User {
            email_verified: true,
            updated_at: now,
            ..stored
        };
        match self.store.update_user(&verified).await {
            Ok(true) => {}
            Ok(false) => return Err(AdminError::not_found(Resource::User, key)),
            Err(StoreError::Conflict) => return Err(taken()),
            Err(error) => return Err(error.into()),
        }
        self.record(AuditEvent::new(AuditKind::EmailVerified, now).user(&verified.user_id))
            .await;
        Ok(UserRecord::from(&verified))
    }

    /// Lifts a login lock-out: failed sign-ins before now no longer count against
    /// the user, on every node. Audited as `user.unlocked`.
    pub async fn unlock_user(&self, key: &str) -> Result<UserRecord, AdminError> {
        let now = self.now();
        let user = self.stored_user(key).await?;
        if !self.store.set_user_unlocked(&user.user_id, now).await? {
            return Err(AdminError::not_found(Resource::User, &user.user_id));
        }
        self.record(AuditEvent::new(AuditKind::UserUnlocked, now).user(&user.user_id))
            .await;
        Ok(UserRecord::from(&user))
    }

    /// Removes the user's second factors (TOTP credential and recovery codes,
    /// for a lost authenticator) and ends their browser sessions; `true` if
    /// there were any. Audited as `mfa.reset`.
    pub async fn reset_user_mfa(&self, key: &str) -> Result<(UserRecord, bool), AdminError> {
        let now = self.now();
        let user = self.stored_user(key).await?;
        let mut removed = self.store.delete_second_factors(&user.user_id).await?;
        // A lost authenticator may be the passkey: every one goes, so the user
        // signs in with the password alone and enrols again.
        let mut passkeys_removed = 0_u64;
        for passkey in self.store.list_passkeys(&user.user_id).await? {
            if self
                .store
                .delete_passkey(&user.user_id, &passkey.credential_id)
                .await?
            {
                passkeys_removed += 1;
            }
        }
        removed |= passkeys_removed > 0;
        self.store.delete_sessions_of_user(&user.user_id).await?;
        self.record(
            AuditEvent::new(AuditKind::MfaReset, now)
                .user(&user.user_id)
                .detail("removed", removed)
                .detail("passkeys_removed", passkeys_removed),
        )
        .await;
        Ok((UserRecord::from(&user), removed))
    }

    /// Sets a new password (checking the rules) and ends the user's browser
    /// sessions, so whoever signed in with the old password is signed out.
    /// Audited as `user.password_set`.
    pub async fn set_user_password(
        &self,
        key: &str,
        password: &Password,
    ) -> Result<UserRecord, AdminError> {
        let user = self.stored_user(key).await?;
        let hash = self
            .hasher
            .hash(password.expose())
            .await
            .map_err(password_error)?;
        let now = self.now();
        if !self
            .store
            .set_user_password(&user.user_id, &hash, now)
            .await?
        {
            return Err(AdminError::not_found(Resource::User, &user.user_id));
        }
        self.store.delete_sessions_of_user(&user.user_id).await?;
        self.record(AuditEvent::new(AuditKind::UserPasswordSet, now).user(&user.user_id))
            .await;
        Ok(UserRecord::from(&user))
    }

    /// Deletes a user, after revoking their grants so their access tokens land on
    /// the revocation list before the grants disappear. Audited as `user.deleted`.
    pub async fn delete_user(&self, key: &str) -> Result<UserRecord, AdminError> {
        let now = self.now();
        let user = self.stored_user(key).await?;
        self.store.revoke_grants_of_user(&user.user_id, now).await?;
        if !self.store.delete_user(&user.user_id).await? {
            return Err(AdminError::not_found(Resource::User, &user.user_id));
        }
        self.record(
            AuditEvent::new(AuditKind::UserDeleted, now)
                .user(&user.user_id)
                .detail("username", user.username.as_str()),
        )
        .await;
        Ok(UserRecord::from(&user))
    }
}

/// A user by `user_id`, or else by username or email.
pub(crate) async fn find_user(
    store: &dyn UserStore,
    key: &str,
) -> Result<Option<User>, StoreError> {
    if let Some(user) = store.get_user(key).await? {
        return Ok(Some(user));
    }
    store.find_user_by_login(key).await
}

/// Checks a new user and stores it (no audit: [`Admin::create_user`] does that).
pub(crate) async fn insert_user(
    store: &dyn UserStore,
    hasher: &PasswordHasher,
    new: NewUser,
    now: i64,
) -> Result<User, AdminError> {
    let username = new.username;
    check_username(&username)?;
    let email = new.email;
    if let Some(email) = &email {
        check_email(email)?;
    } else if new.email_verified {
        return Err(verified_without_email());
    }
    let name = clean_name("name", new.name)?;
    let given_name = clean_name("given_name", new.given_name)?;
    let family_name = clean_name("family_name", new.family_name)?;
    if let Some(password) = &new.password {
        check_password_rules(password.expose())
            .map_err(|weak| AdminError::invalid(Field::new("password"), None, weak.to_string()))?;
    }
    // The store keeps usernames unique and emails unique; a username equal to
    // someone's email (or the reverse) would make a login ambiguous, so refuse
    // that too. Not atomic with the insert, but only operators create users.
    if store.find_user_by_login(&username).await?.is_some() {
        return Err(AdminError::conflict(
            Field::new("username"),
            Some(username),
            "already taken (as another user's username or email)",
        ));
    }
    if let Some(email) = &email
        && store.find_user_by_login(email).await?.is_some()
    {
        return Err(email_taken(email));
    }
    let password_hash = match &new.password {
        Some(password) => Some(
            hasher
                .hash(password.expose())
                .await
                .map_err(password_error)?,
        ),
        None => None,
    };
    let user = User {
        user_id: random_id()
            .map_err(|e| AdminError::Internal(format!("could not generate a user id: {e}")))?,
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
        admin: new.admin,
    };
    match store.insert_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict) => Err(taken()),
        Err(error) => Err(error.into()),
    }
}

/// The stored user with the update applied and checked, and the names of the
/// fields that differ.
fn apply(stored: &User, update: UserUpdate) -> Result<(User, Vec<&'static str>), AdminError> {
    let mut user = stored.clone();
    if let Some(email) = update.email {
        if let Some(email) = &email {
            check_email(email)?;
        }
        if email != user.email {
            // A new address is not verified until someone says so.
            user.email_verified = false;
        }
        user.email = email;
    }
    if let Some(verified) = update.email_verified {
        if verified && user.email.is_none() {
            return Err(verified_without_email());
        }
        user.email_verified = verified;
    }
    if let Some(name) = update.name {
        user.name = clean_name("name", name)?;
    }
    if let Some(name) = update.given_name {
        user.given_name = clean_name("given_name", name)?;
    }
    if let Some(name) = update.family_name {
        user.family_name = clean_name("family_name", name)?;
    }
    if let Some(admin) = update.admin {
        user.admin = admin;
    }
    let changed = [
        ("email", user.email != stored.email),
        (
            "email_verified",
            user.email_verified != stored.email_verified,
        ),
        ("name", user.name != stored.name),
        ("given_name", user.given_name != stored.given_name),
        ("family_name", user.family_name != stored.family_name),
        ("admin", user.admin != stored.admin),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    Ok((user, changed))
}

fn password_error(error: PasswordError) -> AdminError {
    match error {
        PasswordError::Weak(weak) => {
            AdminError::invalid(Field::new("password"), None, weak.to_string())
        }
        PasswordError::Hashing(_) | PasswordError::Overloaded { .. } => {
            AdminError::Internal(error.to_string())
        }
    }
}

pub(crate) fn email_taken(email: &str) -> AdminError {
    AdminError::conflict(
        Field::new("email"),
        Some(email.to_owned()),
        "already used by another user (as an email or username)",
    )
}

/// Another user took the username or email between our check and the write.
fn taken() -> AdminError {
    AdminError::conflict(
        Field::new("username"),
        None,
        "a user with this username or email already exists",
    )
}

fn verified_without_email() -> AdminError {
    AdminError::invalid(Field::new("email_verified"), None, "needs an email")
}

pub(crate) fn check_username(username: &str) -> Result<(), AdminError> {
    // ASCII only: a username is matched exactly, and Unicode would bring look-alike
    // and normalization variants of the same name. Display names may be Unicode.
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    let length = username.chars().count();
    if length == 0 || length > MAX_USERNAME_CHARS || !username.chars().all(allowed) {
        return Err(AdminError::invalid(
            Field::new("username"),
            Some(username.to_owned()),
            "must be 1 to 64 characters, each a letter (A-Z, a-z), a digit, '.', '_', '-' or '@'",
        ));
    }
    Ok(())
}

pub(crate) fn check_email(email: &str) -> Result<(), AdminError> {
    let invalid = |reason: &'static str| {
        AdminError::invalid(Field::new("email"), Some(email.to_owned()), reason)
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
fn clean_name(field: &'static str, name: Option<String>) -> Result<Option<String>, AdminError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let name = name.trim();
    let invalid = |reason| AdminError::invalid(Field::new(field), None, reason);
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("must be at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::users::tests::{Users, alice};

    fn field_of(error: &AdminError) -> String {
        error
            .field_error()
            .map(|e| e.field.to_string())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn usernames_and_emails_do_not_collide() {
        let store = Users::default();
        let hasher = PasswordHasher::with_permits(2);
        insert_user(&store, &hasher, alice(), 100).await.unwrap();
        let again = insert_user(&store, &hasher, alice(), 100)
            .await
            .unwrap_err();
        assert!(matches!(again, AdminError::Conflict(_)), "{again}");
        assert_eq!(
            again.to_string(),
            "username: already taken (as another user's username or email)"
        );
        let same_email = NewUser {
            username: "alice2".into(),
            email: Some("ALICE@example.com".into()),
            ..NewUser::default()
        };
        let error = insert_user(&store, &hasher, same_email, 100)
            .await
            .unwrap_err();
        assert!(matches!(error, AdminError::Conflict(_)), "{error}");
        assert_eq!(field_of(&error), "email");
        let username_is_an_email = NewUser {
            username: "alice@example.com".into(),
            ..NewUser::default()
        };
        let error = insert_user(&store, &hasher, username_is_an_email, 100)
            .await
            .unwrap_err();
        assert!(matches!(error, AdminError::Conflict(_)), "{error}");
        assert_eq!(field_of(&error), "username");
        let email_is_a_username = NewUser {
            username: "carol".into(),
            email: Some("alice".into()),
            ..NewUser::default()
        };
        let error = insert_user(&store, &hasher, email_is_a_username, 100)
            .await
            .unwrap_err();
        assert!(matches!(error, AdminError::Invalid(_)), "{error}");
        assert_eq!(field_of(&error), "email");
    }

    #[tokio::test]
    async fn invalid_input_names_the_field() {
        let store = Users::default();
        let hasher = PasswordHasher::with_permits(2);
        let cases: Vec<(NewUser, &str)> = vec![
            (
                NewUser {
                    username: String::new(),
                    ..alice()
                },
                "username: must be 1 to 64",
            ),
            (
                NewUser {
                    email: Some("no-at-sign".into()),
                    ..alice()
                },
                "email: must contain exactly one '@'",
            ),
            (
                NewUser {
                    email: None,
                    ..alice()
                },
                "email_verified: needs an email",
            ),
            (
                NewUser {
                    given_name: Some("x".repeat(201)),
                    ..alice()
                },
                "given_name: must be at most 200 characters",
            ),
            (
                NewUser {
                    family_name: Some("a\u{7}b".into()),
                    ..alice()
                },
                "family_name: must not contain control characters",
            ),
            (
                NewUser {
                    password: Some(Password::new("short".into())),
                    ..alice()
                },
                "password: the password must be at least 8 characters",
            ),
            (
                NewUser {
                    password: Some(Password::new("         ".into())),
                    ..alice()
                },
                "password: the password must not consist only of whitespace",
            ),
        ];
        for (new, expected) in cases {
            let error = insert_user(&store, &hasher, new, 100).await.unwrap_err();
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
            assert!(error.to_string().starts_with("email: "), "{error}");
        }
        assert_eq!(long.len(), 255);
    }

    #[test]
    fn name_rules() {
        assert_eq!(clean_name("name", None).unwrap(), None);
        assert_eq!(clean_name("name", Some("   ".into())).unwrap(), None);
        assert_eq!(
            clean_name("name", Some(" Zoë Ångström ".into())).unwrap(),
            Some("Zoë Ångström".into())
        );
        assert!(clean_name("name", Some("ä".repeat(200))).is_ok());
        assert!(clean_name("name", Some("ä".repeat(201))).is_err());
        assert!(clean_name("name", Some("a\tb".into())).is_err());
    }
}
