//! `valet client …`

use clap::Subcommand;
use serde_json::json;
use valet_core::audit::{AuditEvent, AuditKind};
use valet_core::clients::{NewClient, delete, register, rotate_secret};
use valet_core::store::Client;
use valet_core::{Clock, SystemClock};

use crate::config::Config;
use crate::output::timestamp;
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
    /// Replace a confidential client's secret; the old one stops working.
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
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
            };
            let registered =
                register(store.as_ref(), new, config.access_token_max_ttl, now).await?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::ClientCreated, now)
                    .client(&registered.client.client_id)
                    .detail("name", registered.client.name.as_str())
                    .detail("grant_types", registered.client.grant_types.join(" "))
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
                        client.grant_types.join(","),
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
            let secret = rotate_secret(store.as_ref(), &client_id, now)
                .await?
                .ok_or_else(|| format!("no confidential client with id {client_id}"))?;
            audit(
                store.as_ref(),
                AuditEvent::new(AuditKind::ClientSecretRotated, now).client(&client_id),
            )
            .await;
            if json {
                println!(
                    "{}",
                    json!({ "client_id": client_id, "client_secret": secret.expose() })
                );
            } else {
                println!("New secret for {client_id}: {}", secret.expose());
                println!("The old secret no longer works. This one is shown only now.");
            }
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
    println!("  grant types:   {}", client.grant_types.join(" "));
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
    println!("  created:       {}", timestamp(client.created_at));
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
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    })
}
