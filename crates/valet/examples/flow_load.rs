//! Load generator for the browser flow (Authorization Code + PKCE) and refresh
//! rotations, for `bench/`: the same flows, options and JSON result as
//! `bench/flows.py`, at a fraction of its CPU per request, so that on a 2-core
//! machine the server, not the generator, is what a run measures.
//!
//! ```text
//! cargo build --release -p valet --example flow_load
//! target/release/examples/flow_load --base http://127.0.0.1:18400 --client-id ID \
//!     --client-secret SECRET --users alice,bob --password PW --mode full \
//!     --duration 10 --concurrency 16 [--server-pid PID ...] [--label L] [--json-out F]
//! ```
//!
//! Each worker is a "browser": its own keep-alive connection and cookie jar. It
//! follows redirects and fills whatever form the server shows (hidden inputs as
//! they are, `username`/`login` and `password` with its user, `decision=allow`),
//! so one driver runs against Valet and against oidc-provider's devInteractions.
//!
//! Modes (as in `bench/flows.py`): `full` signs in and consents on every flow
//! with a fresh browser, then redeems the code and refreshes once; `sso` signs
//! in once before the clock and then runs authorize → code → refresh on the
//! remembered session; `refresh` rotates one refresh token per worker in a loop.
//!
//! All workers run on one thread (a current-thread runtime): the generator uses
//! at most one core and usually far less; its own CPU per flow is reported
//! (`driver_cpu_per_flow_ms`) beside the server's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use valet_jose::{b64url, random_bytes};
use valet_test_support::http::form_body as form;
use valet_test_support::pkce::Pkce;

type Error = Box<dyn std::error::Error + Send + Sync>;

const REDIRECT_URI: &str = "https://app.example.test/callback";
const STEPS: [&str; 5] = ["authorize", "login", "consent", "token", "refresh"];
/// The most redirects and forms one authorization may take.
const MAX_HOPS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Full,
    Sso,
    Refresh,
}

#[derive(Debug, Parser)]
#[command(about = "Browser-flow load generator for bench/")]
struct Args {
    /// The server's base URL, http:// only.
    #[arg(long)]
    base: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    /// Comma-separated usernames; worker i signs in as user i mod n.
    #[arg(long)]
    users: String,
    #[arg(long, default_value = "correct horse battery staple")]
    password: String,
    #[arg(long, default_value = "openid offline_access read")]
    scope: String,
    #[arg(long, value_enum, default_value = "full")]
    mode: Mode,
    /// Seconds measured.
    #[arg(long, default_value_t = 15.0)]
    duration: f64,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value = "/authorize")]
    authorize_path: String,
    #[arg(long, default_value = "/token")]
    token_path: String,
    /// Processes whose CPU time over the measured window is reported per flow.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    #[arg(long, default_value = "")]
    label: String,
    #[arg(long)]
    json_out: Option<String>,
}

/// What every worker shares.
struct Setup {
    base: String,
    client_id: String,
    basic: String,
    password: String,
    scope: String,
    authorize_path: String,
    token_path: String,
    http: Client<HttpConnector, Body>,
}

/// Latencies in seconds, per step.
#[derive(Default)]
struct Times(BTreeMap<&'static str, Vec<f64>>);

impl Times {
    fn push(&mut self, step: &'static str, started: Instant) {
        self.0
            .entry(step)
            .or_default()
            .push(started.elapsed().as_secs_f64());
    }
}

/// A user agent: cookies and nothing else (hyper's pool keeps the connection).
struct Browser {
    cookies: BTreeMap<String, String>,
}

struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            cookies: BTreeMap::new(),
        }
    }

    async fn request(
        &mut self,
        setup: &Setup,
        method: Method,
        target: &str,
        form: Option<String>,
        authorization: Option<&str>,
    ) -> Result<Reply, Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{target}", setup.base));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(header::COOKIE, jar.join("; "));
        }
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        let response = setup.http.request(request.body(body)?).await?;
        self.keep_cookies(response.headers());
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), 4 << 20).await?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Reply {
            status,
            location,
            body,
        })
    }

    fn keep_cookies(&mut self, headers: &axum::http::HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let lower = text.to_ascii_lowercase();
            let deleted = value.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970");
            if deleted {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

/// The first `<form action="…">` of a page, with its inputs' names and values.
fn parse_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let lower = page.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let open_end = start + lower[start..].find('>')?;
    let action = attribute(&page[start..open_end], "action")?;
    let close = open_end + lower[open_end..].find("</form>")?;
    let inner = &page[open_end..close];
    let inner_lower = &lower[open_end..close];
    let mut fields = Vec::new();
    let mut at = 0;
    while let Some(offset) = inner_lower[at..].find("<input") {
        let tag_start = at + offset;
        let tag_end = tag_start + inner_lower[tag_start..].find('>')?;
        let tag = &inner[tag_start..tag_end];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
        at = tag_end;
    }
    Some((action, fields))
}

/// `name="value"` in a tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let needle = format!(" {name}=\"");
    let start = lower.find(&needle)? + needle.len();
    let end = start + tag[start..].find('"')?;
    Some(unescape(&tag[start..end]))
}

/// HTML character references: the named ones a template escapes with, and
/// numeric ones (`&#47;`, `&#x2f;`).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let character = match &rest[1..end] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                entity => {
                    let number = entity.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => number.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }
            };
            character.map(|character| (character, end + 1))
        });
        match decoded {
            Some((character, length)) => {
                out.push(character);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The path and query of an absolute or relative URL.
fn path_of(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".into(), |at| rest[at..].to_owned()),
        None => location.to_owned(),
    }
}

fn random_text() -> Result<String, Error> {
    Ok(b64url(random_bytes::<16>()?))
}

/// Drives `/authorize` to the redirect with the code; returns (code, verifier).
async fn authorize(
    setup: &Setup,
    browser: &mut Browser,
    user: &str,
    prompt_consent: bool,
    times: &mut Times,
) -> Result<(String, String), Error> {
    let Pkce {
        verifier,
        challenge,
    } = Pkce::new();
    let (state, nonce) = (random_text()?, random_text()?);
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", setup.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", setup.scope.as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if prompt_consent {
        query.push(("prompt", "consent"));
    }
    let mut step = "authorize";
    let mut started = Instant::now();
    let mut next = (
        Method::GET,
        format!("{}?{}", setup.authorize_path, form(&query)),
        None,
    );
    for _ in 0..MAX_HOPS {
        let (method, target, body) = next;
        let reply = browser
            .request(setup, method.clone(), &target, body, None)
            .await?;
        if reply.status.is_redirection() {
            let location = reply.location.ok_or("a redirect without Location")?;
            if location.starts_with(REDIRECT_URI) {
                times.push(step, started);
                return code_from(&location, &state).map(|code| (code, verifier));
            }
            next = (Method::GET, path_of(&location), None);
            continue;
        }
        if reply.status != StatusCode::OK {
            return Err(format!("{method} {target}: {} {:.200}", reply.status, reply.body).into());
        }
        let (action, fields) = parse_form(&reply.body).ok_or("no form in the page")?;
        times.push(step, started);
        started = Instant::now();
        let (filled, kind) = fill(fields, user, &setup.password);
        step = kind;
        next = (Method::POST, path_of(&action), Some(filled));
    }
    Err("too many steps".into())
}

/// A sign-in form gets the user and password, anything else is a consent.
fn fill(mut fields: Vec<(String, String)>, user: &str, password: &str) -> (String, &'static str) {
    let sign_in = fields
        .iter()
        .any(|(name, _)| name == "password" || name == "login");
    if sign_in {
        let login = if fields.iter().any(|(name, _)| name == "login") {
            "login"
        } else {
            "username"
        };
        fields.retain(|(name, _)| name != login && name != "password");
        fields.push((login.into(), user.into()));
        fields.push(("password".into(), password.into()));
    } else {
        fields.retain(|(name, _)| name != "decision");
        fields.push(("decision".into(), "allow".into()));
    }
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    (form(&pairs), if sign_in { "login" } else { "consent" })
}

fn code_from(location: &str, state: &str) -> Result<String, Error> {
    let query = location
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default();
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    match (params.get("state"), params.get("code")) {
        (Some(returned), Some(code)) if returned == state => Ok(code.clone()),
        _ => Err(format!("bad redirect: {location}").into()),
    }
}

/// One token request; the JSON reply.
async fn token(
    setup: &Setup,
    browser: &mut Browser,
    pairs: &[(&str, &str)],
    times: &mut Times,
    step: &'static str,
) -> Result<Value, Error> {
    let started = Instant::now();
    let reply = browser
        .request(
            setup,
            Method::POST,
            &setup.token_path,
            Some(form(pairs)),
            Some(&setup.basic),
        )
        .await?;
    times.push(step, started);
    if reply.status != StatusCode::OK {
        return Err(format!("token ({step}): {} {:.200}", reply.status, reply.body).into());
    }
    Ok(serde_json::from_str(&reply.body)?)
}

async fn refresh(
    setup: &Setup,
    browser: &mut Browser,
    refresh_token: &str,
    times: &mut Times,
) -> Result<String, Error> {
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let tokens = token(setup, browser, &pairs, times, "refresh").await?;
    let next = tokens.get("refresh_token").and_then(Value::as_str);
    Ok(next
        .ok_or("no refresh token in the refresh reply")?
        .to_owned())
}

/// Authorize, redeem the code, refresh once; the refresh token it ends with.
async fn one_flow(
    setup: &Setup,
    browser: &mut Browser,
    user: &str,
    prompt_consent: bool,
    times: &mut Times,
) -> Result<String, Error> {
    let (code, verifier) = authorize(setup, browser, user, prompt_consent, times).await?;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = token(setup, browser, &pairs, times, "token").await?;
    let first = tokens.get("refresh_token").and_then(Value::as_str);
    let first = first.ok_or_else(|| format!("no refresh token: {tokens}"))?;
    refresh(setup, browser, first, times).await
}

/// What one worker did in the measured window.
#[derive(Default)]
struct Outcome {
    flows: u64,
    errors: u64,
    first_error: Option<String>,
    times: Times,
}

/// Prepares (a session or a refresh token, per mode), waits for `start`, then
/// runs flows until `deadline`.
async fn worker(
    setup: std::sync::Arc<Setup>,
    mode: Mode,
    user: String,
    start: tokio::sync::watch::Receiver<Option<Instant>>,
    ready: tokio::sync::mpsc::Sender<()>,
    duration: Duration,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut browser = Browser::new();
    let mut scratch = Times::default();
    let mut refresh_token = None;
    if mode != Mode::Full {
        match one_flow(&setup, &mut browser, &user, true, &mut scratch).await {
            Ok(token) => refresh_token = Some(token),
            Err(error) => outcome.first_error = Some(error.to_string()),
        }
    }
    let _ = ready.send(()).await;
    drop(ready);
    let Some(started) = wait_for_start(start).await else {
        return outcome;
    };
    if outcome.first_error.is_some() {
        return outcome;
    }
    let deadline = started + duration;
    while Instant::now() < deadline {
        let result = match mode {
            Mode::Full => {
                browser = Browser::new();
                one_flow(&setup, &mut browser, &user, true, &mut outcome.times).await
            }
            Mode::Sso => one_flow(&setup, &mut browser, &user, false, &mut outcome.times).await,
            Mode::Refresh => {
                let current = refresh_token.take().unwrap_or_default();
                refresh(&setup, &mut browser, &current, &mut outcome.times).await
            }
        };
        match result {
            Ok(token) => {
                refresh_token = Some(token);
                outcome.flows += 1;
            }
            Err(error) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert_with(|| error.to_string());
                if mode != Mode::Full {
                    break;
                }
            }
        }
    }
    outcome
}

async fn wait_for_start(
    mut start: tokio::sync::watch::Receiver<Option<Instant>>,
) -> Option<Instant> {
    let at = (*start.wait_for(Option::is_some).await.ok()?)?;
    tokio::time::sleep_until(at.into()).await;
    Some(at)
}

/// utime + stime of `pids` in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pids: &[u32]) -> Result<u64, Error> {
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let after_name = stat.rsplit_once(')').ok_or("unreadable /proc stat")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        for index in [11, 12] {
            total += fields
                .get(index)
                .ok_or("short /proc stat")?
                .parse::<u64>()?;
        }
    }
    Ok(total)
}

/// `/proc` reports CPU times in USER_HZ units, which Linux fixes at 100 per
/// second whatever the kernel's own tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let index = ((q * sorted.len() as f64) as usize).min(last);
    sorted.get(index).copied()
}

fn step_summary(times: &Times) -> Value {
    let mut steps = serde_json::Map::new();
    for step in STEPS {
        let mut values = times.0.get(step).cloned().unwrap_or_default();
        values.sort_by(f64::total_cmp);
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        let ms = |value: Option<f64>| value.map(|seconds| seconds * 1e3);
        steps.insert(
            step.into(),
            json!({
                "count": values.len(),
                "mean_ms": ms(mean),
                "p50_ms": ms(percentile(&values, 0.5)),
                "p99_ms": ms(percentile(&values, 0.99)),
            }),
        );
    }
    Value::Object(steps)
}

fn setup_from(args: &Args) -> Result<Setup, Error> {
    if !args.base.starts_with("http://") {
        return Err("--base must be an http:// URL".into());
    }
    let credentials = format!("{}:{}", args.client_id, args.client_secret);
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Ok(Setup {
        base: args.base.trim_end_matches('/').to_owned(),
        client_id: args.client_id.clone(),
        basic: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ),
        password: args.password.clone(),
        scope: args.scope.clone(),
        authorize_path: args.authorize_path.clone(),
        token_path: args.token_path.clone(),
        // One idle connection per worker is what a browser keeps.
        http: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .build(connector),
    })
}

/// Starts the workers, measures the window, and collects their outcomes.
async fn run(args: &Args) -> Result<(Vec<Outcome>, f64, Option<(f64, f64)>), Error> {
    let setup = std::sync::Arc::new(setup_from(args)?);
    let users: Vec<&str> = args.users.split(',').filter(|u| !u.is_empty()).collect();
    let duration = Duration::from_secs_f64(args.duration);
    let (start_tx, start_rx) = tokio::sync::watch::channel(None);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.concurrency.max(1));
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..args.concurrency {
        let user = users.get(index % users.len().max(1)).ok_or("no --users")?;
        workers.spawn(worker(
            setup.clone(),
            args.mode,
            (*user).to_owned(),
            start_rx.clone(),
            ready_tx.clone(),
            duration,
        ));
    }
    drop(ready_tx);
    while ready_rx.recv().await.is_some() {}
    let at = Instant::now() + Duration::from_millis(200);
    start_tx.send(Some(at))?;
    tokio::time::sleep_until(at.into()).await;
    let cpu_start = (
        cpu_ticks(&args.server_pids)?,
        cpu_ticks(&[std::process::id()])?,
    );
    let outcomes = workers.join_all().await;
    let elapsed = at.elapsed().as_secs_f64().max(args.duration);
    let cpu_end = (
        cpu_ticks(&args.server_pids)?,
        cpu_ticks(&[std::process::id()])?,
    );
    let hz = TICKS_PER_SECOND;
    let cpu = Some((
        (cpu_end.0 - cpu_start.0) as f64 / hz,
        (cpu_end.1 - cpu_start.1) as f64 / hz,
    ));
    Ok((outcomes, elapsed, cpu))
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (outcomes, elapsed, cpu) = runtime.block_on(run(&args))?;
    let flows: u64 = outcomes.iter().map(|o| o.flows).sum();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let first_error = outcomes.iter().find_map(|o| o.first_error.clone());
    let mut times = Times::default();
    for outcome in outcomes {
        for (step, values) in outcome.times.0 {
            times.0.entry(step).or_default().extend(values);
        }
    }
    let per_flow_ms = |seconds: f64| (flows > 0).then(|| seconds / flows as f64 * 1e3);
    let (server_cpu, driver_cpu) = cpu.unwrap_or_default();
    let out = json!({
        "label": args.label, "mode": format!("{:?}", args.mode).to_lowercase(),
        "driver": "rust", "concurrency": args.concurrency,
        "flows": flows, "errors": errors, "first_error": first_error,
        "flows_per_s": flows as f64 / elapsed,
        "server_cpu_per_flow_ms": if args.server_pids.is_empty() { None } else { per_flow_ms(server_cpu) },
        "driver_cpu_per_flow_ms": per_flow_ms(driver_cpu),
        "steps": step_summary(&times),
    });
    if let Some(path) = &args.json_out {
        std::fs::write(path, out.to_string())?;
    }
    println!("FLOWS {out}");
    if errors > 0 || flows == 0 {
        eprintln!("first error: {}", first_error.unwrap_or_default());
        std::process::exit(1);
    }
    Ok(())
}
