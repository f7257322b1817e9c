//! `valet token decode`: a local inspector. The token never leaves this process.

use std::io::Read;

use base64::Engine as _;
use clap::Subcommand;
use serde_json::{Map, Value};

use crate::output::{relative, timestamp};
use crate::storage::CliError;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a JWT's header and claims, with times in readable form. Does not
    /// verify the signature and sends the token nowhere. Use `-` to read stdin.
    Decode {
        token: String,
        /// Print header and claims as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Decode { token, json } => {
            let token = if token == "-" {
                let mut input = String::new();
                std::io::stdin().read_to_string(&mut input)?;
                input
            } else {
                token
            };
            let now = valet_core::Clock::now(&valet_core::SystemClock);
            let (header, claims) = decode(token.trim())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"header": header, "claims": claims})
                    )?
                );
            } else {
                print!("{}", render(&header, &claims, now));
            }
            Ok(())
        }
    }
}

type JsonObject = Map<String, Value>;

fn decode(token: &str) -> Result<(JsonObject, JsonObject), CliError> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.as_slice() {
        [header, payload, _signature] => {
            Ok((segment("header", header)?, segment("payload", payload)?))
        }
        [..] if parts.len() == 5 => Err(
            "this is an encrypted JWT (JWE, 5 segments): its claims cannot be read without the key"
                .into(),
        ),
        _ => Err(format!(
            "not a JWT: expected 3 dot-separated segments, found {}",
            parts.len()
        )
        .into()),
    }
}

fn segment(name: &str, text: &str) -> Result<Map<String, Value>, CliError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("the {name} is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| format!("the {name} is not a JSON object").into())
}

fn render(header: &Map<String, Value>, claims: &Map<String, Value>, now: i64) -> String {
    let mut out = String::from("Header (signature NOT verified)\n");
    for (name, value) in header {
        out.push_str(&format!("  {name:<10} {}\n", plain(value)));
    }
    out.push_str("Claims\n");
    for (name, value) in claims {
        let shown = match (name.as_str(), value.as_i64()) {
            ("exp" | "iat" | "nbf" | "auth_time", Some(t)) => {
                format!("{t}  ({}, {})", timestamp(t), relative(t, now))
            }
            _ => plain(value),
        };
        out.push_str(&format!("  {name:<10} {shown}\n"));
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        if exp > now {
            out.push_str(&format!(
                "Expires {} ({})\n",
                relative(exp, now),
                timestamp(exp)
            ));
        } else {
            out.push_str(&format!(
                "EXPIRED {} ({})\n",
                relative(exp, now),
                timestamp(exp)
            ));
        }
    }
    out
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_renders_times() {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"ES256","typ":"at+jwt"}"#),
            enc(r#"{"sub":"svc","exp":1700000600,"iat":1700000000}"#)
        );
        let Ok((header, claims)) = decode(&token) else {
            unreachable!("valid token")
        };
        let text = render(&header, &claims, 1_700_000_000);
        assert!(text.contains("at+jwt"));
        assert!(text.contains("2023-11-14 22:23:20 UTC, in 10m 0s"));
        assert!(text.contains("Expires in 10m 0s"));
        assert!(decode("a.b").is_err());
        assert!(decode("!!.??.x").is_err());
    }
}
