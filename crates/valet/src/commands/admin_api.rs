//! `valet admin …`: the admin HTTP API's bootstrap client and its OpenAPI
//! document.

use clap::Subcommand;
use serde_json::json;
use valet_core::admin::DEFAULT_ADMIN_CLIENT_ID;

use super::admin::{AdminParts, flagged, report_audit_warnings};
use crate::config::Config;
use crate::storage::CliError;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the admin API client: a confidential client_credentials client
    /// with the scopes admin:read and admin:write for the audience
    /// {issuer}/admin. Its secret is printed once. Refused if the client
    /// exists (rotate its secret with `valet client secret rotate` instead).
    Bootstrap {
        /// The client's id.
        #[arg(long, default_value = DEFAULT_ADMIN_CLIENT_ID)]
        client_id: String,
        /// The server's issuer, whose admin audience the client gets
        /// (default: the configured issuer, as `valet serve` uses it).
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the admin API's OpenAPI 3.1 document (as served at
    /// /admin/v1/openapi.json and checked in at docs/openapi.json).
    Openapi,
}

pub async fn run(config: &Config, command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::Openapi => {
            print!("{}", valet_server::admin_api_openapi());
            Ok(())
        }
        AdminCommand::Bootstrap {
            client_id,
            issuer,
            json,
        } => {
            let issuer = issuer.map_or_else(
                || config.issuer(),
                |issuer| issuer.trim_end_matches('/').to_owned(),
            );
            bootstrap(config, &client_id, &issuer, json).await
        }
    }
}

async fn bootstrap(
    config: &Config,
    client_id: &str,
    issuer: &str,
    json: bool,
) -> Result<(), CliError> {
    let parts = AdminParts::open(config).await?;
    let admin = parts.admin();
    let registered = admin
        .bootstrap_admin_client(client_id, issuer)
        .await
        .map_err(flagged)?;
    report_audit_warnings(&admin);
    let secret = registered
        .secret
        .as_ref()
        .map(|secret| secret.expose())
        .unwrap_or_default();
    let client = &registered.client;
    if json {
        println!(
            "{}",
            json!({
                "client_id": client.client_id,
                "client_secret": secret,
                "scope": client.scopes.join(" "),
                "audience": client.audiences.first(),
            })
        );
    } else {
        println!("Created the admin API client {}", client.client_id);
        println!("  client_id:     {}", client.client_id);
        println!("  client_secret: {secret}");
        println!("  scopes:        {}", client.scopes.join(" "));
        println!("  audience:      {}", client.audiences.join(" "));
        println!("The secret is shown only now and is not stored; keep it somewhere safe.");
        println!(
            "Get a token: curl -u '{}:SECRET' -d grant_type=client_credentials {issuer}/token",
            client.client_id
        );
    }
    Ok(())
}
