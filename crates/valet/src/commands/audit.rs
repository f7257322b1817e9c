//! `valet audit`: the recent audit trail, newest first, filtered by user, client,
//! event type, actor and a time range.

use clap::Args;
use valet_core::admin::AuditQuery;
use valet_core::audit::{AuditEvent, AuditKind};

use super::admin::{AdminParts, flagged};
use crate::config::Config;
use crate::output::timestamp;
use crate::storage::CliError;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this user (user id, username or email)
    #[arg(long, allow_hyphen_values = true)]
    user: Option<String>,
    /// Only events of this client
    #[arg(long, allow_hyphen_values = true)]
    client: Option<String>,
    /// Only events of this type, e.g. login.failed (see `valet audit --types`)
    #[arg(long = "type", value_name = "TYPE")]
    event: Option<String>,
    /// Only events newer than this: seconds, or a number with s, m, h or d
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    since: String,
    /// Only events at least this old: seconds, or a number with s, m, h or d
    #[arg(long, value_name = "DURATION")]
    until: Option<String>,
    /// Only events caused by this actor (`detail.actor`: the admin API client
    /// that made the change, or the token-exchange actor)
    #[arg(long, allow_hyphen_values = true)]
    actor: Option<String>,
    /// At most this many events
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    limit: u32,
    /// One JSON object per line instead of a table
    #[arg(long)]
    json: bool,
    /// List the event types and exit
    #[arg(long)]
    types: bool,
}

pub async fn run(config: &Config, args: AuditArgs) -> Result<(), CliError> {
    if args.types {
        for kind in AuditKind::ALL {
            println!("{}", kind.as_str());
        }
        return Ok(());
    }
    let event = match &args.event {
        Some(name) => Some(AuditKind::parse(name).ok_or_else(|| {
            format!("--type: unknown event type {name:?}; `valet audit --types` lists them")
        })?),
        None => None,
    };
    let since = parse_duration(&args.since).ok_or_else(|| {
        format!(
            "--since: {:?} is not a duration such as 90s, 15m, 24h or 7d",
            args.since
        )
    })?;
    let until = match &args.until {
        Some(text) => Some(parse_duration(text).ok_or_else(|| {
            format!("--until: {text:?} is not a duration such as 90s, 15m, 24h or 7d")
        })?),
        None => None,
    };
    let parts = AdminParts::open(config).await?;
    let query = AuditQuery {
        user: args.user,
        client_id: args.client,
        event,
        max_age: Some(since),
        since: None,
        actor: args.actor,
        until: None,
        min_age: until,
        limit: args.limit,
    };
    let events = parts.admin().query_audit(query).await.map_err(flagged)?;
    if args.json {
        for event in &events {
            println!("{}", serde_json::to_string(event)?);
        }
    } else if events.is_empty() {
        println!("No audit events match.");
    } else {
        print_table(&events);
    }
    Ok(())
}

fn print_table(events: &[AuditEvent]) {
    println!(
        "{:<20} {:<22} {:<24} {:<24} {:<16} DETAIL",
        "TIME (UTC)", "EVENT", "USER", "CLIENT", "ADDRESS"
    );
    for event in events {
        let detail: Vec<String> = event
            .detail
            .iter()
            .map(|(name, value)| match value.as_str() {
                Some(text) => format!("{name}={text}"),
                None => format!("{name}={value}"),
            })
            .collect();
        println!(
            "{:<20} {:<22} {:<24} {:<24} {:<16} {}",
            timestamp(event.at),
            event.event,
            event.user_id.as_deref().unwrap_or("-"),
            event.client_id.as_deref().unwrap_or("-"),
            event.address.as_deref().unwrap_or("-"),
            detail.join(" ")
        );
    }
}

/// `90`, `90s`, `15m`, `24h`, `7d` → seconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (at, last) = text.char_indices().last()?;
    let unit = match last {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return text.parse::<i64>().ok().filter(|s| *s >= 0),
    };
    let number = text.get(..at)?;
    number
        .parse::<i64>()
        .ok()?
        .checked_mul(unit)
        .filter(|s| *s >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("7d"), Some(604_800));
        for bad in ["", "d", "-1h", "1w", "1.5h", "99999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
