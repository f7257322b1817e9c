//! `valet upstream …`: the providers users may sign in with ("Sign in with
//! …"). Parses the arguments, calls `valet_core::upstream::admin`, prints.

use std::io::{BufRead, IsTerminal};

use clap::{Subcommand, ValueEnum};
use valet_core::store::UpstreamKind;
use valet_core::upstream::Upstreams;
use valet_core::upstream::admin::{self, NewUpstream, UpstreamRecord};
use valet_core::{Clock, SystemClock};

use super::admin::{AdminParts, flagged};
use crate::config::Config;
use crate::storage::{CliError, Create, master_key};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// An OpenID provider, by discovery from its issuer.
    Oidc,
    /// A plain OAuth 2 provider (GitHub-style): endpoints and a userinfo mapping.
    Oauth2,
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Add a provider. The redirect URI to register at the provider is
    /// {issuer}/upstream/{name}/callback.
    Add(Box<AddArgs>),
    /// List the providers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one provider (never its secret).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a provider and every user's link to it.
    Remove { name: String },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The name in URLs and on the sign-in button: a-z, 0-9, '-'.
    #[arg(long)]
    name: String,
    #[arg(long, value_enum, default_value = "oidc")]
    kind: KindArg,
    /// The OpenID issuer (its discovery document is fetched now).
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    client_id: String,
    /// The client secret at the provider (stored sealed). Prefer
    /// --client-secret-stdin: a command line is visible to other users.
    #[arg(long, conflicts_with = "client_secret_stdin")]
    client_secret: Option<String>,
    /// Read the client secret from standard input (one line).
    #[arg(long)]
    client_secret_stdin: bool,
    /// A scope to ask for (repeatable); default `openid email profile`
    /// for an OpenID provider.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    #[arg(long)]
    authorization_endpoint: Option<String>,
    #[arg(long)]
    token_endpoint: Option<String>,
    #[arg(long)]
    userinfo_endpoint: Option<String>,
    /// The userinfo claim with the user's id at the provider (default `sub`).
    #[arg(long)]
    subject_claim: Option<String>,
    /// The claim with the email address (default `email`).
    #[arg(long)]
    email_claim: Option<String>,
    /// The claim with the display name (default `name`).
    #[arg(long)]
    name_claim: Option<String>,
}

pub async fn run(config: &Config, command: UpstreamCommand) -> Result<(), CliError> {
    let parts = AdminParts::open(config).await?;
    let store = parts.store.as_ref();
    let now = SystemClock.now();
    match command {
        UpstreamCommand::Add(args) => {
            let master = master_key(config, store, Create::Refused).await?;
            let new = new_upstream(*args)?;
            let upstreams = Upstreams::default();
            let added = admin::add(store, &master, &upstreams, new, now)
                .await
                .map_err(flagged)?;
            println!("Added upstream {}.", added.name);
            println!(
                "Register this redirect URI at the provider: {}",
                valet_core::upstream::callback_url(&config.settings().issuer, &added.name)
            );
            Ok(())
        }
        UpstreamCommand::List { json } => {
            let list = admin::list(store).await.map_err(flagged)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("No upstreams: add one with `valet upstream add`.");
            } else {
                println!("{:<20} {:<7} {:<40} CLIENT ID", "NAME", "KIND", "ISSUER");
                for upstream in &list {
                    println!(
                        "{:<20} {:<7} {:<40} {}",
                        upstream.name,
                        upstream.kind,
                        upstream.issuer.as_deref().unwrap_or("-"),
                        upstream.client_id
                    );
                }
            }
            Ok(())
        }
        UpstreamCommand::Show { name, json } => {
            let upstream = admin::show(store, &name).await.map_err(flagged)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&upstream)?);
            } else {
                print_upstream(&upstream);
            }
            Ok(())
        }
        UpstreamCommand::Remove { name } => {
            admin::remove(store, &name, now).await.map_err(flagged)?;
            println!("Removed upstream {name} and every link to it.");
            Ok(())
        }
    }
}

fn new_upstream(args: AddArgs) -> Result<NewUpstream, CliError> {
    let client_secret = match (args.client_secret, args.client_secret_stdin) {
        (Some(secret), false) => secret,
        (None, true) => read_secret()?,
        _ => return Err("--client-secret or --client-secret-stdin: one is required".into()),
    };
    Ok(NewUpstream {
        name: args.name,
        kind: match args.kind {
            KindArg::Oidc => UpstreamKind::Oidc,
            KindArg::Oauth2 => UpstreamKind::Oauth2,
        },
        issuer: args.issuer,
        client_id: args.client_id,
        client_secret,
        scopes: args.scopes,
        authorization_endpoint: args.authorization_endpoint,
        token_endpoint: args.token_endpoint,
        userinfo_endpoint: args.userinfo_endpoint,
        subject_claim: args.subject_claim,
        email_claim: args.email_claim,
        name_claim: args.name_claim,
    })
}

fn read_secret() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Client secret (end with Enter):");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn print_upstream(upstream: &UpstreamRecord) {
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    println!("name:                   {}", upstream.name);
    println!("kind:                   {}", upstream.kind);
    println!("issuer:                 {}", or_dash(&upstream.issuer));
    println!("client_id:              {}", upstream.client_id);
    println!("scopes:                 {}", upstream.scopes.join(" "));
    println!(
        "authorization_endpoint: {}",
        or_dash(&upstream.authorization_endpoint)
    );
    println!(
        "token_endpoint:         {}",
        or_dash(&upstream.token_endpoint)
    );
    println!(
        "userinfo_endpoint:      {}",
        or_dash(&upstream.userinfo_endpoint)
    );
    println!(
        "claims:                 subject={} email={} name={}",
        upstream.subject_claim, upstream.email_claim, upstream.name_claim
    );
}
