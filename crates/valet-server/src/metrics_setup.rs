//! The Prometheus recorder, installed once per process.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often recorded latencies are folded into their histogram buckets. Until
/// then each one is kept as a sample, so without this upkeep they would pile up
/// without bound whenever nothing scrapes `/metrics` (about 0.5 MiB a second under
/// load).
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the global recorder the first time, with its upkeep thread; later
/// calls return the same handle.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("valet_http_request_duration_seconds".into()),
            &LATENCY_BUCKETS,
        )
        .map_err(|error| error.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    // Losing a race with another thread only means its handle is the one kept.
    if metrics::set_global_recorder(recorder).is_err() {
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| "another metrics recorder is installed".to_owned());
    }
    let handle = HANDLE.get_or_init(|| handle).clone();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("valet-metrics".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|error| format!("cannot start the metrics upkeep thread: {error}"))?;
    Ok(handle)
}
