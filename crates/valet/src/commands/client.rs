//! `valet client …`

use clap::Subcommand;
use serde_json::json;
use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::clients::{NewClient, delete, register, rotate_secret};

use super::audit::parse_duration;
use valet_core::store::{Client, Store};
use valet_core::{Clock, SystemClock};

use crate::config::Config;
use crate::output::{duration, timestamp};
use crate::storage::{CliError, audit, open_store};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create {
        /// Display name (shown to users on consent pages).
        #[arg(long)]
        name: String,
        /// A public client (SPA, mobile): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// Exact redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return to (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// authorization_code, refresh_token or client_credentials (repeatable).
        /// Default: client_credentials without redirect URIs, else authorization_code + refresh_token.
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// A scope the client may request (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An API the client's tokens may be for (RFC 8707 resource; repeatable; the first is the default).
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Access token lifetime in seconds (at most access_token_max_ttl).
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// A first-party app: users are not asked for consent.
        #[arg(long)]
        skip_consent: bool,
        /// Seconds in which a repeated refresh request gets the same new pair
        /// instead of revoking the token family (0-60; default 0 = strict).
        #[arg(long, default_value_t = 0)]
        refresh_grace_seconds: i64,
        /// ID token signing algorithm: RS256 (default) or ES256.
        #[arg(long)]
        id_token_alg: Option<String>,
        /// May introspect any token (a resource server registered under its own
        /// id); without it a client introspects only tokens issued to it or
        /// naming its client_id in their audience.
        #[arg(long)]
        introspect_any: bool,
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client (never its secret, which is not stored).
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client. Its tokens stop being accepted at introspection.
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Manage a confidential client's secret.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Same as `valet client secret rotate` (without --overlap): the old secret
    /// stops working at once.
    #[command(hide = true)]
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Give a confidential client a new secret. It works at once; the old one
    /// stops at once, or after --overlap so services can roll without downtime.
    Rotate {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// How long the old secret keeps working beside the new one: `90s`,
        /// `15m`, `1h`, `7d` (at most 30 days; default 0 = stops at once).
        #[arg(long, value_parser = overlap_seconds, default_value = "0")]
        overlap: i64,
        #[arg(long)]
        json: bool,
    },
}

fn overlap_seconds(text: &str) -> Result<i64, String> {
    parse_duration(text).ok_or_else(|| {
        format!("{text:?} is not a duration: use a number of seconds or 90s, 15m, 1h, 7d")
    })
}

pub async fn run(config: &Config, command: ClientCommand) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        ClientCommand::Create {
            name,
            public,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            audiences,
            access_token_ttl,
            skip_consent,
            refresh_grace_seconds,
            id_token_alg,
            introspect_any,
            json,
        } => {
            let new = NewClient {
                name,
                public,
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                scopes,
                audiences,
                access_token_ttl,
                skip_consent,
                refresh_grace_seconds,
                id_token_signed_response_alg: id_token_alg,
                introspect_any,
            };
            let registered =
                register(store.as_ref(), new, config.access_token_max_ttl, now).await?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::ClientCreated, now)
                    .client(&registered.client.client_id)
                    .detail("name", registered.client.name.as_str())
                    .detail("grant_types", grant_names(&registered.client, " "))
                    .detail("scope", registered.client.scopes.join(" ")),
            )
            .await;
            let secret = registered.secret.as_ref().map(|s| s.expose());
            if json {
                let out = match secret {
                    Some(secret) => {
                        json!({ "client_id": registered.client.client_id, "client_secret": secret })
                    }
                    None => json!({ "client_id": registered.client.client_id }),
                };
                println!("{out}");
            } else {
                println!("Created client {:?}", registered.client.name);
                println!("  client_id:     {}", registered.client.client_id);
                if let Some(secret) = secret {
                    println!("  client_secret: {secret}");
                    println!(
                        "The secret is shown only now and is not stored; keep it somewhere safe."
                    );
                }
                print_details(&registered.client);
            }
        }
        ClientCommand::List { json } => {
            let clients = store.list_clients().await?;
            if json {
                let list: Vec<_> = clients.iter().map(client_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if clients.is_empty() {
                println!(
                    "No clients. Create one with: valet client create --name NAME --audience API"
                );
            } else {
                println!("{:<24} {:<13} {:<40} NAME", "CLIENT_ID", "TYPE", "GRANTS");
                for client in &clients {
                    println!(
                        "{:<24} {:<13} {:<40} {}",
                        client.client_id,
                        kind(client),
                        grant_names(client, ","),
                        client.name
                    );
                }
            }
        }
        ClientCommand::Show { client_id, json } => {
            let client = store
                .get_client(&client_id)
                .await?
                .ok_or_else(|| format!("no client with id {client_id}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&client_json(&client))?);
            } else {
                println!("Client {:?}", client.name);
                println!("  client_id:     {}", client.client_id);
                print_details(&client);
            }
        }
        ClientCommand::Delete { client_id } => {
            if !delete(store.as_ref(), &client_id, now).await? {
                return Err(format!("no client with id {client_id}").into());
            }
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::ClientDeleted, now).client(&client_id),
            )
            .await;
            println!("Deleted client {client_id}.");
        }
        ClientCommand::RotateSecret { client_id, json } => {
            rotate(store.as_ref(), &client_id, 0, json, now).await?;
        }
        ClientCommand::Secret(SecretCommand::Rotate {
            client_id,
            overlap,
            json,
        }) => {
            rotate(store.as_ref(), &client_id, overlap, json, now).await?;
        }
    }
    Ok(())
}

async fn rotate(
    store: &dyn Store,
    client_id: &str,
    overlap: i64,
    json: bool,
    now: i64,
) -> Result<(), CliError> {
    let rotated = rotate_secret(store, client_id, overlap, now)
        .await?
        .ok_or_else(|| format!("no confidential client with id {client_id}"))?;
    let mut event = AuditEvent::new(AuditKind::ClientSecretRotated, now)
        .client(client_id)
        .detail("overlap_seconds", overlap);
    if let Some(until) = rotated.previous_valid_until {
        event = event.detail("previous_secret_valid_until", until);
    }
    audit(store, event).await;
    let secret = rotated.secret.expose();
    if json {
        println!(
            "{}",
            json!({
                "client_id": client_id,
                "client_secret": secret,
                "previous_secret_valid_until": rotated.previous_valid_until,
            })
        );
    } else {
        println!("New secret for {client_id}: {secret}");
        match rotated.previous_valid_until {
            Some(until) => println!(
                "The old secret keeps working until {} ({}); then only the new one does. This one is shown only now.",
                timestamp(until),
                duration(overlap)
            ),
            None => println!("The old secret no longer works. This one is shown only now."),
        }
    }
    Ok(())
}

fn kind(client: &Client) -> &'static str {
    if client.is_public() {
        "public"
    } else {
        "confidential"
    }
}

fn print_details(client: &Client) {
    println!("  type:          {}", kind(client));
    println!("  grant types:   {}", grant_names(client, " "));
    let list = |values: &[String]| {
        if values.is_empty() {
            "-".to_owned()
        } else {
            values.join(" ")
        }
    };
    println!("  scopes:        {}", list(&client.scopes));
    println!("  audiences:     {}", list(&client.audiences));
    println!("  redirect URIs: {}", list(&client.redirect_uris));
    if !client.post_logout_redirect_uris.is_empty() {
        println!(
            "  post-logout:   {}",
            list(&client.post_logout_redirect_uris)
        );
    }
    if let Some(ttl) = client.access_token_ttl {
        println!("  token TTL:     {ttl}s");
    }
    if client.introspect_any {
        println!("  introspects:   any token");
    }
    if let Some(until) = client.previous_secret_expires_at {
        println!("  old secret:    works until {}", timestamp(until));
    }
    println!("  created:       {}", timestamp(client.created_at));
}

fn grant_names(client: &Client, separator: &str) -> String {
    let names: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
    names.join(separator)
}

fn client_json(client: &Client) -> serde_json::Value {
    json!({
        "client_id": client.client_id,
        "name": client.name,
        "type": kind(client),
        "grant_types": client.grant_types,
        "scopes": client.scopes,
        "audiences": client.audiences,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "access_token_ttl": client.access_token_ttl,
        "skip_consent": client.skip_consent,
        "refresh_grace_seconds": client.refresh_grace_seconds,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "introspect_any": client.introspect_any,
        "previous_secret_valid_until": client.previous_secret_expires_at,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    })
}
