//! The process's log subscriber and, when `otlp_endpoint` is set, the export of
//! request spans to an OpenTelemetry collector over OTLP/HTTP (protobuf).
//!
//! The exporter sends through Valet's own reqwest client on Valet's own tokio
//! runtime ([`RuntimeClient`]): no second HTTP stack, TLS stack or runtime, no
//! gRPC. Only the spans of target `valet::http` (one per request: method, route
//! template, status; see `valet_server`'s access log module) are exported;
//! events (log lines) are not, so nothing that is logged reaches the collector.

use std::io::IsTerminal;
use std::time::Duration;

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;
use crate::storage::CliError;

/// The log filter: `VALET_LOG`, else `info`.
fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("VALET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Logs to stdout in `format`, filtered by `VALET_LOG`.
pub fn init_logging(format: LogFormat) {
    let _ = tracing_subscriber::registry()
        .with(log_layer(format).with_filter(env_filter()))
        .try_init();
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

fn log_layer(format: LogFormat) -> BoxedLayer {
    // Colours only for a person at a terminal, not in files or journals.
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false);
    match format {
        // The target tells audit records (`valet::audit`) and access lines
        // (`valet::access`) from the rest.
        LogFormat::Json => layer.json().with_target(true).boxed(),
        LogFormat::Text => layer.boxed(),
    }
}

/// The running span export; [`Telemetry::shutdown`] sends what is still queued.
pub struct Telemetry {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

/// How long one export request may take; a collector that is down costs a
/// dropped batch, never a request's latency (export runs on its own thread).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs the log subscriber, with the OTLP span export when `otlp_endpoint`
/// is set (`Some` then: the caller shuts it down at the end).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Option<Telemetry>, CliError> {
    let Some(endpoint) = otlp_endpoint else {
        init_logging(format);
        return Ok(None);
    };
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};

    let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(RuntimeClient::new()?)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|error| format!("otlp_endpoint: {error}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("valet")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("valet"))
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("valet::http", tracing::Level::INFO),
        );
    let _ = tracing_subscriber::registry()
        .with(log_layer(format).with_filter(env_filter()))
        .with(spans)
        .try_init();
    tracing::info!(otlp = %traces, "request spans are exported to {traces}");
    Ok(Some(Telemetry { provider }))
}

/// Makes `span` continue the trace of a W3C `traceparent` (and `tracestate`)
/// header; nothing when there is none or it is malformed. Valet calls it only
/// for requests from `trusted_proxies` (see `valet_server::ContinueTrace`).
pub fn continue_trace(headers: &axum::http::HeaderMap, span: &tracing::Span) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

impl Telemetry {
    /// Exports the queued spans and stops the exporter's thread. It blocks, so
    /// it runs off the async workers (the export itself needs them).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = stopped {
            tracing::warn!(%error, "the span export did not shut down cleanly");
        }
    }
}

/// An [`opentelemetry_http::HttpClient`] that runs each request on Valet's
/// tokio runtime with Valet's reqwest client. The SDK's batch processor
/// exports from a thread of its own, outside the runtime: the request is
/// spawned onto the runtime through its handle and awaited from there.
#[derive(Debug, Clone)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeClient {
    fn new() -> Result<Self, CliError> {
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            // A collector does not redirect; following one could send spans
            // somewhere nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("otlp_endpoint: cannot build the HTTP client: {error}"))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| format!("otlp_endpoint: no async runtime: {error}"))?;
        Ok(Self { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        let (status, headers, body) = sent.await??;
        let mut response = opentelemetry_http::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
