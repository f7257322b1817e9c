//! `valet`: the authorization server and its administration commands.

mod commands;
mod config;
mod output;
mod storage;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Arg, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::config::FlagOverrides;

#[derive(Debug, Parser)]
#[command(
    name = "valet",
    version,
    about = "Valet: an OAuth 2.1 authorization server and OpenID Connect provider"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes, so the CLI works on the same store as the server.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Directory for the SQLite database and master.key [env: VALET_DATA_DIR] [default: ./valet-data]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [env: VALET_DATABASE_URL] [default: SQLite in the data dir]
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// TOML configuration file [default: ./valet.toml if present]
    #[arg(long, global = true, env = "VALET_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server (creates the store and master key on first start).
    Serve(commands::serve::ServeArgs),
    /// Create the store, the master key and the signing keys without serving.
    /// Every command but `serve` and `init` needs an existing store.
    Init,
    /// Register and manage OAuth clients.
    #[command(subcommand)]
    Client(commands::client::ClientCommand),
    /// Create and manage the users who sign in.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Inspect, rotate and import signing keys.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Show the audit trail: sign-ins, consents, tokens, client and key changes.
    Audit(commands::audit::AuditArgs),
    /// The admin HTTP API (/admin/v1): its bootstrap client, its OpenAPI document.
    #[command(subcommand)]
    Admin(commands::admin_api::AdminCommand),
    /// The providers users may sign in with ("Sign in with …").
    #[command(subcommand)]
    Upstream(commands::upstream::UpstreamCommand),
    /// Inspect tokens locally.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Run a verifying reverse proxy in front of an API.
    Guard(commands::guard::GuardArgs),
    /// Run a backend-for-frontend for a browser app: sign-in, tokens kept
    /// server-side, API calls with the access token added.
    Gateway(commands::gateway::GatewayArgs),
    /// Ask a running node whether it is ready (GET /readyz): exit status 0 if
    /// it is, 1 if not. For container health checks.
    Healthcheck(commands::healthcheck::HealthcheckArgs),
}

/// The [`GlobalArgs`] by argument id and flag.
const STORE_OPTIONS: [(&str, &str); 3] = [
    ("data_dir", "--data-dir"),
    ("database_url", "--database-url"),
    ("config", "--config"),
];

/// The CLI, with the store options withdrawn from `valet guard`, which keeps no store
/// and reads no configuration file. clap cannot exempt one subcommand from a global
/// option (clap-rs/clap#4669), but it does not propagate a global option into a
/// subcommand that has an argument of the same id: `guard` gets hidden ones that refuse
/// any value, so `valet guard --data-dir x` is a usage error and its help lists none.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("guard", |guard| {
        STORE_OPTIONS.iter().fold(guard, |guard, (id, flag)| {
            guard.arg(
                Arg::new(*id)
                    .long(flag.trim_start_matches("--"))
                    .hide(true)
                    .value_parser(|_: &str| -> Result<String, String> {
                        Err("`valet guard` keeps no store and reads no configuration file".into())
                    }),
            )
        })
    })
}

/// Parses the command line; exits with clap's usage error on bad input.
fn parse() -> Cli {
    let mut command = command();
    let matches = command.get_matches_mut();
    // `valet --data-dir x guard`: given before the subcommand, so parsed as the global.
    if matches.subcommand_name() == Some("guard")
        && let Some((_, flag)) = STORE_OPTIONS
            .iter()
            .find(|(id, _)| matches.value_source(id) == Some(ValueSource::CommandLine))
    {
        command
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!("{flag} does not apply to `valet guard`: it keeps no store and reads no configuration file"),
            )
            .exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// The exit status of a process that a closed pipe stopped: what a shell shows
/// for one killed by SIGPIPE (128 + 13), as for `yes | head`.
const BROKEN_PIPE_EXIT: i32 = 141;

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = parse();
    if let Err(error) = config::check_environment(std::env::vars_os().map(|(name, _)| name)) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` to a closed pipe (`valet audit | head`)
/// panics with "failed printing to stdout: Broken pipe". For a command's output
/// that only means the reader has what it wanted: end at once with the status a
/// shell expects, and no panic message. Every other panic keeps its report.
/// (Resetting SIGPIPE itself would need `unsafe`, which the workspace forbids,
/// and would reach the server's own sockets too.)
fn quiet_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std")
            && (message.contains("Broken pipe") || message.contains("os error 32"))
        {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        report(info);
    }));
}

async fn run(cli: Cli) -> Result<(), storage::CliError> {
    let mut flags = FlagOverrides {
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        ..FlagOverrides::default()
    };
    match cli.command {
        Command::Token(command) => commands::token::run(command),
        Command::Guard(args) => commands::guard::run(args).await,
        Command::Gateway(args) => commands::gateway::run(args).await,
        Command::Healthcheck(args) => {
            let config = match args.url {
                Some(_) => None,
                None => Some(config::load(cli.global.config.as_deref(), flags)?),
            };
            commands::healthcheck::run(args, config.as_ref()).await
        }
        Command::Serve(args) => {
            flags.bind = args.bind.clone();
            flags.issuer = args.issuer.clone();
            flags.dangerous_allow_insecure_issuer =
                args.dangerous_allow_insecure_issuer.then_some(true);
            flags.tls_cert = args.tls_cert.clone();
            flags.tls_key = args.tls_key.clone();
            flags.metrics_bind = args.metrics_bind.clone();
            flags.otlp_endpoint = args.otlp_endpoint.clone();
            flags.insecure_benchmark_password_hash =
                args.insecure_benchmark_password_hash.then_some(true);
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::serve::run(config).await
        }
        Command::Init => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::init::run(&config).await
        }
        Command::Client(command) => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::client::run(&config, command).await
        }
        Command::User(command) => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::user::run(&config, command).await
        }
        Command::Key(command) => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::key::run(&config, command).await
        }
        Command::Audit(args) => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::audit::run(&config, args).await
        }
        Command::Admin(command) => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::admin_api::run(&config, command).await
        }
        Command::Upstream(command) => {
            let config = config::load(cli.global.config.as_deref(), flags)?;
            commands::upstream::run(&config, command).await
        }
    }
}
