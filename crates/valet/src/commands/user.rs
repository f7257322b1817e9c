//! `valet user …`: parses the arguments, calls the admin service, prints.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};
use serde_json::json;
use valet_core::admin::{Admin, NewUser, UserRecord, UserUpdate};
use valet_core::users::{MAX_PASSWORD_BYTES, Password};

use super::admin::{AdminParts, flagged, report_audit_warnings};
use crate::config::Config;
use crate::output::timestamp;
use crate::storage::{CliError, Create, master_key};

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
        /// Give the user the admin role: they may use the web console at /admin.
        #[arg(long)]
        admin: bool,
    },
    /// Change a user's email or profile (by user_id, username or email). An
    /// empty value removes a field; a new email is unverified unless
    /// --email-verified is given.
    Update(UpdateArgs),
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
    /// Invite EMAIL to create an account (with registration = "invite"): a
    /// running `valet serve` mails the invitation link, valid for 7 days.
    Invite { email: String },
    /// Mark the user's email address as verified (the `email_verified` claim),
    /// as a verification link would.
    VerifyEmail {
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
    /// Second factors (TOTP, recovery codes).
    #[command(subcommand)]
    Mfa(MfaCommand),
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Remove the user's second factors (a lost authenticator and recovery
    /// codes) and end their sessions; they sign in with their password alone,
    /// or enrol again at the next sign-in where a second factor is required.
    Reset {
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
}

/// What `valet user update` may change; an option left out keeps its value.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(allow_hyphen_values = true)]
    user: String,
    /// New email address ('' removes it).
    #[arg(long)]
    email: Option<String>,
    /// Whether the email is verified: --email-verified or --email-verified=false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    email_verified: Option<bool>,
    /// Full name ('' removes it).
    #[arg(long)]
    name: Option<String>,
    /// First name ('' removes it).
    #[arg(long)]
    given_name: Option<String>,
    /// Surname ('' removes it).
    #[arg(long)]
    family_name: Option<String>,
    #[arg(long)]
    json: bool,
    /// Give the user the admin role (the web console at /admin).
    #[arg(long, conflicts_with = "no_admin")]
    admin: bool,
    /// Take the admin role away.
    #[arg(long)]
    no_admin: bool,
}

pub async fn run(config: &Config, command: UserCommand) -> Result<(), CliError> {
    let parts = AdminParts::open(config).await?;
    let admin = parts.admin();
    if let UserCommand::Invite { email } = &command {
        let master = master_key(config, parts.store.as_ref(), Create::Refused).await?;
        let result = admin.invite_user(&master, email).await.map_err(flagged);
        report_audit_warnings(&admin);
        result?;
        println!("Invited {email}: a running valet serve mails the link (valid 7 days).");
        return Ok(());
    }
    let result = dispatch(&admin, command).await;
    report_audit_warnings(&admin);
    result
}

async fn dispatch(admin: &Admin<'_>, command: UserCommand) -> Result<(), CliError> {
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
            admin: admin_role,
        } => {
            let new = NewUser {
                username,
                email,
                email_verified,
                name,
                given_name,
                family_name,
                password: Some(read_password(password_stdin)?),
                admin: admin_role,
            };
            create(admin, new, json).await
        }
        UserCommand::Update(args) => update(admin, args).await,
        UserCommand::List { json } => list(admin, json).await,
        UserCommand::Show { user, json } => show(admin, &user, json).await,
        UserCommand::Disable { user } => {
            let changed = admin.disable_user(&user).await.map_err(flagged)?;
            let (user, revoked) = (&changed.user, changed.revoked);
            println!(
                "Disabled user {} ({}): revoked {} grant(s), ended {} session(s).",
                user.username, user.user_id, revoked.grants, revoked.sessions
            );
            Ok(())
        }
        UserCommand::Enable { user } => {
            let user = admin.enable_user(&user).await.map_err(flagged)?.user;
            println!("Enabled user {} ({}).", user.username, user.user_id);
            Ok(())
        }
        UserCommand::Unlock { user } => {
            let user = admin.unlock_user(&user).await.map_err(flagged)?;
            println!(
                "Unlocked user {} ({}): earlier failed sign-ins no longer count, on every node.",
                user.username, user.user_id
            );
            Ok(())
        }
        UserCommand::Invite { .. } => Err("valet user invite is handled before dispatch".into()),
        UserCommand::VerifyEmail { user } => verify_email(admin, &user).await,
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => set_password(admin, &user, password_stdin).await,
        UserCommand::Delete { user } => {
            let user = admin.delete_user(&user).await.map_err(flagged)?;
            println!("Deleted user {} ({}).", user.username, user.user_id);
            Ok(())
        }
        UserCommand::Mfa(MfaCommand::Reset { user }) => reset_mfa(admin, &user).await,
    }
}

async fn verify_email(admin: &Admin<'_>, user: &str) -> Result<(), CliError> {
    let user = admin.verify_email(user).await.map_err(flagged)?;
    println!(
        "Verified the email address {} of user {} ({}).",
        user.email.as_deref().unwrap_or_default(),
        user.username,
        user.user_id
    );
    Ok(())
}

async fn reset_mfa(admin: &Admin<'_>, user: &str) -> Result<(), CliError> {
    let (user, removed) = admin.reset_user_mfa(user).await.map_err(flagged)?;
    if removed {
        println!(
            "Removed the second factors of {} ({}) and ended their sessions.",
            user.username, user.user_id
        );
    } else {
        println!(
            "User {} ({}) had no second factor.",
            user.username, user.user_id
        );
    }
    Ok(())
}

async fn create(admin: &Admin<'_>, new: NewUser, json: bool) -> Result<(), CliError> {
    let user = admin.create_user(new).await.map_err(flagged)?;
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
    Ok(())
}

async fn update(admin: &Admin<'_>, args: UpdateArgs) -> Result<(), CliError> {
    // An empty value removes the field.
    let given = |value: Option<String>| value.map(|v| (!v.is_empty()).then_some(v));
    let update = UserUpdate {
        email: given(args.email),
        email_verified: args.email_verified,
        name: given(args.name),
        given_name: given(args.given_name),
        family_name: given(args.family_name),
        admin: match (args.admin, args.no_admin) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        },
    };
    let changed = admin
        .update_user(&args.user, update)
        .await
        .map_err(flagged)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&changed)?)?
        );
        return Ok(());
    }
    let user = &changed.user;
    if changed.changed.is_empty() {
        println!("User {} is unchanged.", user.username);
    } else {
        println!(
            "Updated user {}: {}",
            user.username,
            changed.changed.join(", ")
        );
    }
    println!("  user_id:       {}", user.user_id);
    print_details(user);
    Ok(())
}

async fn list(admin: &Admin<'_>, json: bool) -> Result<(), CliError> {
    let users = admin.list_users().await.map_err(flagged)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&users)?)?
        );
    } else if users.is_empty() {
        println!("No users. Create one with: valet user create --username NAME --password-stdin");
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
    Ok(())
}

async fn show(admin: &Admin<'_>, key: &str, json: bool) -> Result<(), CliError> {
    let user = admin.get_user(key).await.map_err(flagged)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&user)?)?
        );
    } else {
        println!("User {}", user.username);
        println!("  user_id:       {}", user.user_id);
        print_details(&user);
    }
    Ok(())
}

/// The user is looked up before the password is read, so a wrong name fails
/// before anyone types a password.
async fn set_password(admin: &Admin<'_>, key: &str, password_stdin: bool) -> Result<(), CliError> {
    let user = admin.get_user(key).await.map_err(flagged)?;
    let password = read_password(password_stdin)?;
    admin
        .set_user_password(&user.user_id, &password)
        .await
        .map_err(flagged)?;
    println!(
        "Set a new password for {} ({}); their sessions have ended.",
        user.username, user.user_id
    );
    Ok(())
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

fn status(user: &UserRecord) -> &'static str {
    if user.disabled {
        "disabled"
    } else if !user.has_password {
        "no-pass"
    } else {
        "active"
    }
}

fn print_details(user: &UserRecord) {
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
        if user.has_password { "set" } else { "none" }
    );
    println!("  admin:         {}", if user.admin { "yes" } else { "no" });
    println!("  created:       {}", timestamp(user.created_at));
    println!("  updated:       {}", timestamp(user.updated_at));
}
