//! `valet user …`

use std::io::{IsTerminal, Read};

use clap::Subcommand;
use serde_json::json;
use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::store::User;
use valet_core::users::{
    MAX_PASSWORD_BYTES, NewUser, Password, PasswordHasher, create_user, delete_user, find_user,
    set_disabled, set_password,
};
use valet_core::{Clock, SystemClock};

use crate::config::Config;
use crate::output::timestamp;
use crate::storage::{CliError, audit, open_store};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input.
    Create {
        /// Login name: 1-64 of A-Z a-z 0-9 . _ - @ (case-sensitive).
        #[arg(long)]
        username: String,
        /// Email address; users can also sign in with it (case-insensitive).
        #[arg(long)]
        email: Option<String>,
        /// Mark the email as verified (the `email_verified` claim).
        #[arg(long)]
        email_verified: bool,
        /// Full name (the `name` claim).
        #[arg(long)]
        name: Option<String>,
        /// First name (the `given_name` claim).
        #[arg(long)]
        given_name: Option<String>,
        /// Surname (the `family_name` claim).
        #[arg(long)]
        family_name: Option<String>,
        /// Read the password from standard input (one trailing newline is removed):
        /// printf '%s' "$PASSWORD" | valet user create --username alice --password-stdin
        #[arg(long)]
        password_stdin: bool,
        /// Print {"user_id": …, "username": …} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by user_id, username or email).
    Show {
        #[arg(allow_hyphen_values = true)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: sign-in is refused, and their sessions and grants (refresh
    /// and access tokens) are revoked at once.
    Disable {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Lift a login lock-out: failed sign-ins before now no longer count against
    /// the user, on every running node (the lock is per account and address;
    /// see "Users" in the README).
    Unlock {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Set a new password (read from standard input); ends the user's sessions.
    SetPassword {
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Read the password from standard input (one trailing newline is removed).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user, revoking everything issued to them.
    Delete {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
}

pub async fn run(config: &Config, command: UserCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        UserCommand::Create {
            username,
            email,
            email_verified,
            name,
            given_name,
            family_name,
            password_stdin,
            json,
        } => {
            let password = read_password(password_stdin)?;
            let new = NewUser {
                username,
                email,
                email_verified,
                name,
                given_name,
                family_name,
                password: Some(password),
            };
            let user = create_user(store.as_ref(), &hasher(), new, now).await?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::UserCreated, now)
                    .user(&user.user_id)
                    .detail("username", user.username.as_str()),
            )
            .await;
            if json {
                println!(
                    "{}",
                    json!({ "user_id": user.user_id, "username": user.username })
                );
            } else {
                println!("Created user {}", user.username);
                println!("  user_id:       {}", user.user_id);
                print_details(&user);
            }
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                let list: Vec<_> = users.iter().map(user_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if users.is_empty() {
                println!(
                    "No users. Create one with: valet user create --username NAME --password-stdin"
                );
            } else {
                println!("{:<24} {:<9} {:<24} EMAIL", "USER_ID", "STATUS", "USERNAME");
                for user in &users {
                    println!(
                        "{:<24} {:<9} {:<24} {}",
                        user.user_id,
                        status(user),
                        user.username,
                        user.email.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        UserCommand::Show { user, json } => {
            let user = lookup(store.as_ref(), &user).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&user_json(&user))?);
            } else {
                println!("User {}", user.username);
                println!("  user_id:       {}", user.user_id);
                print_details(&user);
            }
        }
        UserCommand::Disable { user } => {
            let user = lookup(store.as_ref(), &user).await?;
            let revoked = set_disabled(store.as_ref(), &user.user_id, true, now)
                .await?
                .ok_or_else(|| not_found(&user.user_id))?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::UserDisabled, now)
                    .user(&user.user_id)
                    .detail("revoked_grants", revoked.grants)
                    .detail("ended_sessions", revoked.sessions),
            )
            .await;
            println!(
                "Disabled user {} ({}): revoked {} grant(s), ended {} session(s).",
                user.username, user.user_id, revoked.grants, revoked.sessions
            );
        }
        UserCommand::Enable { user } => {
            let user = lookup(store.as_ref(), &user).await?;
            set_disabled(store.as_ref(), &user.user_id, false, now)
                .await?
                .ok_or_else(|| not_found(&user.user_id))?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::UserEnabled, now).user(&user.user_id),
            )
            .await;
            println!("Enabled user {} ({}).", user.username, user.user_id);
        }
        UserCommand::Unlock { user } => {
            let user = lookup(store.as_ref(), &user).await?;
            if !store.set_user_unlocked(&user.user_id, now).await? {
                return Err(not_found(&user.user_id).into());
            }
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::UserUnlocked, now).user(&user.user_id),
            )
            .await;
            println!(
                "Unlocked user {} ({}): earlier failed sign-ins no longer count, on every node.",
                user.username, user.user_id
            );
        }
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => {
            let user = lookup(store.as_ref(), &user).await?;
            let password = read_password(password_stdin)?;
            if !set_password(
                store.as_ref(),
                &hasher(),
                &user.user_id,
                password.expose(),
                now,
            )
            .await?
            {
                return Err(not_found(&user.user_id).into());
            }
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::UserPasswordSet, now).user(&user.user_id),
            )
            .await;
            println!(
                "Set a new password for {} ({}); their sessions have ended.",
                user.username, user.user_id
            );
        }
        UserCommand::Delete { user } => {
            let user = lookup(store.as_ref(), &user).await?;
            if !delete_user(store.as_ref(), &user.user_id, now).await? {
                return Err(not_found(&user.user_id).into());
            }
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::UserDeleted, now)
                    .user(&user.user_id)
                    .detail("username", user.username.as_str()),
            )
            .await;
            println!("Deleted user {} ({}).", user.username, user.user_id);
        }
    }
    Ok(())
}

/// One permit: the CLI hashes one password at a time.
fn hasher() -> PasswordHasher {
    PasswordHasher::with_permits(1)
}

async fn lookup(store: &dyn valet_core::store::Store, key: &str) -> Result<User, CliError> {
    Ok(find_user(store, key).await?.ok_or_else(|| not_found(key))?)
}

fn not_found(key: &str) -> String {
    format!("no user with id, username or email {key}")
}

/// The password from standard input, never from an argument (arguments are
/// visible to other local users in the process list and land in shell history).
/// One trailing newline (`\n` or `\r\n`) is removed, nothing else.
fn read_password(password_stdin: bool) -> Result<Password, CliError> {
    if !password_stdin {
        return Err(
            "--password-stdin: required; pipe the password in, e.g. printf '%s' \"$PASSWORD\" | valet user … --password-stdin"
                .into(),
        );
    }
    let stdin = std::io::stdin();
    let mut text = String::new();
    let read = if stdin.is_terminal() {
        // Read from the terminal with echo off, so the password is not shown.
        match rpassword::prompt_password("Password (not shown as you type; end with Enter): ") {
            Ok(typed) => {
                text = typed;
                Ok(text.len())
            }
            Err(error) => Err(error),
        }
    } else {
        // A little more than the longest password, so "too long" is still seen.
        let limit = u64::try_from(MAX_PASSWORD_BYTES + 3).unwrap_or(u64::MAX);
        stdin.lock().take(limit).read_to_string(&mut text)
    };
    if let Err(error) = read {
        drop(Password::new(text)); // zeroes what was read
        return Err(match error.kind() {
            std::io::ErrorKind::InvalidData => {
                "--password-stdin: the password must be valid UTF-8".into()
            }
            _ => format!("--password-stdin: cannot read standard input: {error}").into(),
        });
    }
    // Truncating keeps the bytes in the same allocation, which `Password` zeroes.
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    Ok(Password::new(text))
}

fn status(user: &User) -> &'static str {
    if user.disabled {
        "disabled"
    } else if user.password_hash.is_none() {
        "no-pass"
    } else {
        "active"
    }
}

fn print_details(user: &User) {
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    println!("  status:        {}", status(user));
    match &user.email {
        Some(email) if user.email_verified => println!("  email:         {email} (verified)"),
        Some(email) => println!("  email:         {email}"),
        None => println!("  email:         -"),
    }
    println!("  name:          {}", or_dash(&user.name));
    if user.given_name.is_some() || user.family_name.is_some() {
        println!("  given name:    {}", or_dash(&user.given_name));
        println!("  family name:   {}", or_dash(&user.family_name));
    }
    println!(
        "  password:      {}",
        if user.password_hash.is_some() {
            "set"
        } else {
            "none"
        }
    );
    println!("  created:       {}", timestamp(user.created_at));
    println!("  updated:       {}", timestamp(user.updated_at));
}

/// Everything about a user except the password hash.
fn user_json(user: &User) -> serde_json::Value {
    json!({
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "has_password": user.password_hash.is_some(),
        "disabled": user.disabled,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    })
}
