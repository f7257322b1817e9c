//! `valet client …`: parses the arguments, calls the admin service, prints.

use clap::{Args, Subcommand};
use serde_json::json;
use valet_core::admin::{Admin, ClientRecord, ClientUpdate, EncryptionNames, NewClient};

use super::admin::{AdminParts, flagged, report_audit_warnings};
use super::audit::parse_duration;
use crate::config::Config;
use crate::output::{duration, timestamp};
use crate::storage::{CliError, Create, master_key};

/// The auth method whose secret is kept sealed under the master key.
const SECRET_JWT: &str = "client_secret_jwt";

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create(CreateArgs),
    /// Change a client's settings. A list option given replaces the whole list;
    /// removing a scope or an audience revokes the client's grants (its users
    /// sign in again). Running servers see the change within client_cache_ttl.
    Update(UpdateArgs),
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
    /// Initial access tokens for dynamic client registration
    /// (client_registration = initial_token, RFC 7591).
    #[command(subcommand, name = "initial-token")]
    InitialToken(InitialTokenCommand),
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

#[derive(Debug, Args)]
pub struct CreateArgs {
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
    /// A browser origin (https://host[:port]) that may call /token, /userinfo and
    /// /revoke (CORS; repeatable). A public client's redirect URI origins need not
    /// be listed.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// authorization_code, refresh_token, client_credentials or device_code
    /// (RFC 8628, for devices without a browser; repeatable).
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
    /// Users must sign in with a second factor (TOTP), enrolling one at their
    /// next sign-in if they have none.
    #[arg(long)]
    require_mfa: bool,
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
    /// Its authorization requests must be pushed to /par first (RFC 9126).
    #[arg(long)]
    require_par: bool,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2), so every access
    /// token is bound to the client's key.
    #[arg(long)]
    dpop_bound_access_tokens: bool,
    /// How the client authenticates: private_key_jwt (a JWT signed with one of
    /// its keys, given with --jwks-file or --jwks-uri; it gets no secret), or
    /// client_secret_jwt (a JWT MACed with HS256 and its secret, which is printed
    /// once and kept sealed under the master key). Default: a secret, or none
    /// for --public.
    #[arg(long = "auth-method")]
    auth_method: Option<String>,
    /// A file holding the client's public keys as a JWK Set (for private_key_jwt
    /// and signed request objects).
    #[arg(long = "jwks-file", conflicts_with = "jwks_uri")]
    jwks_file: Option<std::path::PathBuf>,
    /// Where the client publishes its JWK Set (https, or http on a loopback
    /// host); fetched and cached for 5 minutes.
    #[arg(long = "jwks-uri")]
    jwks_uri: Option<String>,
    /// An audience this client may exchange tokens into (RFC 8693; repeatable;
    /// needs --grant-type token_exchange).
    #[arg(long = "token-exchange-audience")]
    token_exchange_audiences: Vec<String>,
    /// Encrypt ID tokens to the client's key (OIDC Core §10.2): ALG[:ENC] with ALG
    /// RSA-OAEP-256, ECDH-ES or ECDH-ES+A256KW and ENC A256GCM (default) or A128GCM.
    /// Needs --jwks-file with a fitting key (use "enc" or none) or --jwks-uri.
    #[arg(long = "id-token-encryption")]
    id_token_encryption: Option<String>,
    /// Answer UserInfo with a JWT signed with RS256 or ES256 (OIDC Core §5.3.2).
    #[arg(long = "userinfo-signing")]
    userinfo_signing: Option<String>,
    /// Encrypt UserInfo answers (the signed JWT, or the JSON): ALG[:ENC] as for
    /// --id-token-encryption.
    #[arg(long = "userinfo-encryption")]
    userinfo_encryption: Option<String>,
    #[arg(long)]
    json: bool,
}

/// What `valet client update` may change; an option left out keeps its value.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(allow_hyphen_values = true)]
    client_id: String,
    /// New display name.
    #[arg(long)]
    name: Option<String>,
    /// The exact redirect URIs (repeatable; replaces the registered ones).
    #[arg(long = "redirect-uri")]
    redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may return to (repeatable; replaces the list).
    #[arg(
        long = "post-logout-redirect-uri",
        conflicts_with = "no_post_logout_redirect_uris"
    )]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Remove every post-logout redirect URI.
    #[arg(long)]
    no_post_logout_redirect_uris: bool,
    /// The browser origins allowed by CORS (repeatable; replaces the list).
    #[arg(long = "allowed-origin", conflicts_with = "no_allowed_origins")]
    allowed_origins: Option<Vec<String>>,
    /// Remove every allowed origin.
    #[arg(long)]
    no_allowed_origins: bool,
    /// The scopes the client may request (repeatable; replaces the list).
    #[arg(long = "scope", conflicts_with = "no_scopes")]
    scopes: Option<Vec<String>>,
    /// Remove every scope.
    #[arg(long)]
    no_scopes: bool,
    /// The APIs its tokens may be for (repeatable; replaces the list; the first is the default).
    #[arg(long = "audience", conflicts_with = "no_audiences")]
    audiences: Option<Vec<String>>,
    /// Remove every audience (a client_credentials client needs one).
    #[arg(long)]
    no_audiences: bool,
    /// Access token lifetime in seconds (at most access_token_max_ttl).
    #[arg(long, conflicts_with = "default_access_token_ttl")]
    access_token_ttl: Option<i64>,
    /// Drop the lifetime override: the configured access_token_ttl applies.
    #[arg(long)]
    default_access_token_ttl: bool,
    /// Whether users are asked for consent: --skip-consent or --skip-consent=false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    skip_consent: Option<bool>,
    /// Whether users must sign in with a second factor: --require-mfa or --require-mfa=false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    require_mfa: Option<bool>,
    /// Refresh grace window in seconds (0-60; 0 = strict).
    #[arg(long)]
    refresh_grace_seconds: Option<i64>,
    /// Whether it may introspect any token: --introspect-any or --introspect-any=false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    introspect_any: Option<bool>,
    /// Whether its authorization requests must be pushed to /par first:
    /// --require-par or --require-par=false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    require_par: Option<bool>,
    /// Whether token requests must carry a DPoP proof: --dpop-bound-access-tokens or
    /// --dpop-bound-access-tokens=false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    dpop_bound_access_tokens: Option<bool>,
    /// Replace the client's keys with the JWK Set in this file.
    #[arg(long = "jwks-file", conflicts_with_all = ["jwks_uri", "no_jwks"])]
    jwks_file: Option<std::path::PathBuf>,
    /// Replace the client's keys with the JWK Set at this URL.
    #[arg(long = "jwks-uri", conflicts_with = "no_jwks")]
    jwks_uri: Option<String>,
    /// Remove the client's keys (not for a private_key_jwt client).
    #[arg(long)]
    no_jwks: bool,
    /// The audiences it may exchange tokens into (repeatable; replaces the list).
    #[arg(
        long = "token-exchange-audience",
        conflicts_with = "no_token_exchange_audiences"
    )]
    token_exchange_audiences: Option<Vec<String>>,
    /// Remove every token exchange audience.
    #[arg(long)]
    no_token_exchange_audiences: bool,
    /// Encrypt ID tokens: ALG[:ENC] (see `client create`), or "none" to stop.
    #[arg(long = "id-token-encryption")]
    id_token_encryption: Option<String>,
    /// Sign UserInfo answers: RS256 or ES256, or "none" for plain JSON.
    #[arg(long = "userinfo-signing")]
    userinfo_signing: Option<String>,
    /// Encrypt UserInfo answers: ALG[:ENC], or "none" to stop.
    #[arg(long = "userinfo-encryption")]
    userinfo_encryption: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `ALG[:ENC]`, or `none` to remove the setting.
fn encryption_update(text: &str) -> Option<EncryptionNames> {
    (text != "none").then(|| EncryptionNames::parse(text))
}

/// The JWK Set in `path`, as text (checked by the admin service).
fn read_jwks(path: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|error| -> CliError { format!("--jwks-file {}: {error}", path.display()).into() })
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

#[derive(Debug, Subcommand)]
pub enum InitialTokenCommand {
    /// Create a token a developer's client presents (Authorization: Bearer) to
    /// register itself at /connect/register. Printed once; stored hashed.
    Create {
        /// How long it works: `90s`, `15m`, `1h`, `7d` (at most a year).
        #[arg(long, value_parser = overlap_seconds, default_value = "1d")]
        ttl: i64,
        /// How many registrations it allows (default: any number until it expires).
        #[arg(long)]
        uses: Option<i64>,
        /// Whom it is for, shown by `list`.
        #[arg(long, default_value = "")]
        note: String,
        #[arg(long)]
        json: bool,
    },
    /// List initial access tokens (never the tokens themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke one at once (clients it registered stay registered).
    Revoke {
        #[arg(allow_hyphen_values = true)]
        token_id: String,
    },
}

fn overlap_seconds(text: &str) -> Result<i64, String> {
    parse_duration(text).ok_or_else(|| {
        format!("{text:?} is not a duration: use a number of seconds or 90s, 15m, 1h, 7d")
    })
}

pub async fn run(config: &Config, command: ClientCommand) -> Result<(), CliError> {
    let parts = AdminParts::open(config).await?;
    // A client_secret_jwt client's secret is stored sealed under the master
    // key: read it only for the commands that seal one.
    let secret_jwt = match &command {
        ClientCommand::Create(args) => args.auth_method.as_deref() == Some(SECRET_JWT),
        ClientCommand::RotateSecret { client_id, .. }
        | ClientCommand::Secret(SecretCommand::Rotate { client_id, .. }) => parts
            .admin()
            .get_client(client_id)
            .await
            .is_ok_and(|client| {
                client
                    .token_endpoint_auth_methods
                    .iter()
                    .any(|method| method == SECRET_JWT)
            }),
        _ => false,
    };
    let master = if secret_jwt {
        Some(master_key(config, parts.store.as_ref(), Create::Refused).await?)
    } else {
        None
    };
    let admin = match &master {
        Some(master) => parts.admin().with_master_key(master),
        None => parts.admin(),
    };
    let result = match command {
        ClientCommand::Create(args) => create(&admin, args).await,
        ClientCommand::Update(args) => update(&admin, args).await,
        ClientCommand::List { json } => list(&admin, json).await,
        ClientCommand::Show { client_id, json } => show(&admin, &client_id, json).await,
        ClientCommand::Delete { client_id } => {
            admin.delete_client(&client_id).await.map_err(flagged)?;
            println!("Deleted client {client_id}.");
            Ok(())
        }
        ClientCommand::RotateSecret { client_id, json } => {
            rotate(&admin, &client_id, 0, json).await
        }
        ClientCommand::Secret(SecretCommand::Rotate {
            client_id,
            overlap,
            json,
        }) => rotate(&admin, &client_id, overlap, json).await,
        ClientCommand::InitialToken(command) => initial_token(&admin, command).await,
    };
    report_audit_warnings(&admin);
    result
}

async fn initial_token(admin: &Admin<'_>, command: InitialTokenCommand) -> Result<(), CliError> {
    match command {
        InitialTokenCommand::Create {
            ttl,
            uses,
            note,
            json,
        } => {
            let created = admin
                .create_initial_token(&note, ttl, uses)
                .await
                .map_err(flagged)?;
            let record = &created.record;
            if json {
                println!(
                    "{}",
                    json!({
                        "token_id": record.token_id,
                        "initial_access_token": created.token.expose(),
                        "expires_at": record.expires_at,
                        "uses_left": record.uses_left,
                    })
                );
            } else {
                println!("Created initial access token {}", record.token_id);
                println!("  token:      {}", created.token.expose());
                println!("  expires:    {}", timestamp(record.expires_at));
                match record.uses_left {
                    Some(uses) => println!("  uses:       {uses}"),
                    None => println!("  uses:       any number until it expires"),
                }
                println!("The token is shown only now and is not stored; hand it over safely.");
            }
        }
        InitialTokenCommand::List { json } => {
            let tokens = admin.list_initial_tokens().await.map_err(flagged)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::to_value(&tokens)?)?
                );
            } else if tokens.is_empty() {
                println!(
                    "No initial access tokens. Create one with: valet client initial-token create"
                );
            } else {
                println!("{:<24} {:<22} {:<6} NOTE", "TOKEN_ID", "EXPIRES", "USES");
                for token in &tokens {
                    let uses = token
                        .uses_left
                        .map_or_else(|| "any".to_owned(), |uses| uses.to_string());
                    println!(
                        "{:<24} {:<22} {:<6} {}",
                        token.token_id,
                        timestamp(token.expires_at),
                        uses,
                        token.note
                    );
                }
            }
        }
        InitialTokenCommand::Revoke { token_id } => {
            admin
                .revoke_initial_token(&token_id)
                .await
                .map_err(flagged)?;
            println!("Revoked initial access token {token_id}.");
        }
    }
    Ok(())
}

async fn create(admin: &Admin<'_>, args: CreateArgs) -> Result<(), CliError> {
    let new = NewClient {
        name: args.name,
        public: args.public,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        allowed_origins: args.allowed_origins,
        grant_types: args.grant_types,
        scopes: args.scopes,
        audiences: args.audiences,
        access_token_ttl: args.access_token_ttl,
        skip_consent: args.skip_consent,
        require_mfa: args.require_mfa,
        refresh_grace_seconds: args.refresh_grace_seconds,
        id_token_signed_response_alg: args.id_token_alg,
        introspect_any: args.introspect_any,
        require_pushed_authorization_requests: args.require_par,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        token_endpoint_auth_method: args.auth_method,
        jwks: args.jwks_file.as_deref().map(read_jwks).transpose()?,
        jwks_uri: args.jwks_uri,
        token_exchange_audiences: args.token_exchange_audiences,
        id_token_encryption: args
            .id_token_encryption
            .as_deref()
            .map(EncryptionNames::parse),
        userinfo_signed_response_alg: args.userinfo_signing,
        userinfo_encryption: args
            .userinfo_encryption
            .as_deref()
            .map(EncryptionNames::parse),
    };
    let registered = admin.register_client(new).await.map_err(flagged)?;
    let client = &registered.client;
    let secret = registered.secret.as_ref().map(|s| s.expose());
    if args.json {
        let out = match secret {
            Some(secret) => json!({ "client_id": client.client_id, "client_secret": secret }),
            None => json!({ "client_id": client.client_id }),
        };
        println!("{out}");
    } else {
        println!("Created client {:?}", client.name);
        println!("  client_id:     {}", client.client_id);
        if let Some(secret) = secret {
            println!("  client_secret: {secret}");
            if client
                .token_endpoint_auth_methods
                .iter()
                .any(|method| method == SECRET_JWT)
            {
                println!(
                    "The secret is shown only now (Valet keeps it sealed to check the client's HS256 assertions); keep it somewhere safe."
                );
            } else {
                println!("The secret is shown only now and is not stored; keep it somewhere safe.");
            }
        }
        print_details(client);
    }
    Ok(())
}

async fn update(admin: &Admin<'_>, args: UpdateArgs) -> Result<(), CliError> {
    let cleared =
        |list: Option<Vec<String>>, clear: bool| if clear { Some(Vec::new()) } else { list };
    let update = ClientUpdate {
        name: args.name,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: cleared(
            args.post_logout_redirect_uris,
            args.no_post_logout_redirect_uris,
        ),
        allowed_origins: cleared(args.allowed_origins, args.no_allowed_origins),
        scopes: cleared(args.scopes, args.no_scopes),
        audiences: cleared(args.audiences, args.no_audiences),
        access_token_ttl: if args.default_access_token_ttl {
            Some(None)
        } else {
            args.access_token_ttl.map(Some)
        },
        skip_consent: args.skip_consent,
        require_mfa: args.require_mfa,
        refresh_grace_seconds: args.refresh_grace_seconds,
        introspect_any: args.introspect_any,
        require_pushed_authorization_requests: args.require_par,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        jwks: if args.no_jwks {
            Some(None)
        } else {
            args.jwks_file
                .as_deref()
                .map(read_jwks)
                .transpose()?
                .map(Some)
        },
        jwks_uri: if args.no_jwks {
            Some(None)
        } else {
            args.jwks_uri.map(Some)
        },
        token_exchange_audiences: cleared(
            args.token_exchange_audiences,
            args.no_token_exchange_audiences,
        ),
        id_token_encryption: args.id_token_encryption.as_deref().map(encryption_update),
        userinfo_signed_response_alg: args
            .userinfo_signing
            .map(|alg| (alg != "none").then_some(alg)),
        userinfo_encryption: args.userinfo_encryption.as_deref().map(encryption_update),
    };
    let updated = admin
        .update_client(&args.client_id, update)
        .await
        .map_err(flagged)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&updated)?)?
        );
        return Ok(());
    }
    let client = &updated.client;
    if updated.changed.is_empty() {
        println!("Client {} is unchanged.", client.client_id);
    } else {
        println!(
            "Updated client {:?}: {}",
            client.name,
            updated.changed.join(", ")
        );
        if updated.revoked_grants > 0 {
            println!(
                "  revoked {} grant(s) that held a removed scope or audience; their users sign in again.",
                updated.revoked_grants
            );
        }
    }
    println!("  client_id:     {}", client.client_id);
    print_details(client);
    Ok(())
}

async fn list(admin: &Admin<'_>, json: bool) -> Result<(), CliError> {
    let clients = admin.list_clients().await.map_err(flagged)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&clients)?)?
        );
    } else if clients.is_empty() {
        println!("No clients. Create one with: valet client create --name NAME --audience API");
    } else {
        println!("{:<24} {:<13} {:<40} NAME", "CLIENT_ID", "TYPE", "GRANTS");
        for client in &clients {
            println!(
                "{:<24} {:<13} {:<40} {}",
                client.client_id,
                client.kind,
                client.grant_types.join(","),
                client.name
            );
        }
    }
    Ok(())
}

async fn show(admin: &Admin<'_>, client_id: &str, json: bool) -> Result<(), CliError> {
    let client = admin.get_client(client_id).await.map_err(flagged)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&client)?)?
        );
    } else {
        println!("Client {:?}", client.name);
        println!("  client_id:     {}", client.client_id);
        print_details(&client);
    }
    Ok(())
}

async fn rotate(
    admin: &Admin<'_>,
    client_id: &str,
    overlap: i64,
    json: bool,
) -> Result<(), CliError> {
    let rotated = admin
        .rotate_client_secret(client_id, overlap)
        .await
        .map_err(flagged)?;
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

fn print_details(client: &ClientRecord) {
    println!("  type:          {}", client.kind);
    println!(
        "  auth method:   {}",
        client.token_endpoint_auth_methods.join(" ")
    );
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
    if !client.allowed_origins.is_empty() {
        println!("  CORS origins:  {}", list(&client.allowed_origins));
    }
    if let Some(ttl) = client.access_token_ttl {
        println!("  token TTL:     {ttl}s");
    }
    if let Some(jwks) = &client.jwks {
        let kids: Vec<&str> = jwks
            .get("keys")
            .and_then(|keys| keys.as_array())
            .into_iter()
            .flatten()
            .filter_map(|key| key.get("kid").and_then(|kid| kid.as_str()))
            .collect();
        println!("  keys:          jwks ({})", kids.join(" "));
    }
    if let Some(uri) = &client.jwks_uri {
        println!("  keys:          {uri}");
    }
    if let (Some(alg), Some(enc)) = (
        client.id_token_encrypted_response_alg,
        client.id_token_encrypted_response_enc,
    ) {
        println!("  ID tokens:     encrypted {alg} {enc}");
    }
    if let Some(alg) = client.userinfo_signed_response_alg {
        println!("  UserInfo:      signed {alg}");
    }
    if let (Some(alg), Some(enc)) = (
        client.userinfo_encrypted_response_alg,
        client.userinfo_encrypted_response_enc,
    ) {
        println!("  UserInfo:      encrypted {alg} {enc}");
    }
    if !client.token_exchange_audiences.is_empty() {
        println!(
            "  exchanges to:  {}",
            list(&client.token_exchange_audiences)
        );
    }
    if client.introspect_any {
        println!("  introspects:   any token");
    }
    if client.require_mfa {
        println!("  sign-in:       second factor required");
    }
    if client.require_pushed_authorization_requests {
        println!("  requests:      must be pushed to /par (RFC 9126)");
    }
    if client.dpop_bound_access_tokens {
        println!("  tokens:        DPoP proof required");
    }
    if let Some(until) = client.previous_secret_valid_until {
        println!("  old secret:    works until {}", timestamp(until));
    }
    println!("  created:       {}", timestamp(client.created_at));
}
