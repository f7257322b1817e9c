//! The Prometheus recorder, installed once per process.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Group commit's writes per transaction (`valet-store-sql`'s batch module).
const BATCH_SIZE_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Every metric Valet records, with the text of its `# HELP` line.
const DESCRIPTIONS: [(&str, Kind, &str); 7] = [
    (
        "valet_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by endpoint and status code.",
    ),
    (
        "valet_http_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's arrival to its answer, by endpoint.",
    ),
    (
        "valet_tokens_issued_total",
        Kind::Counter,
        "Access tokens issued at the token endpoint, by grant type.",
    ),
    (
        "valet_status_streams_refused_total",
        Kind::Counter,
        "Revocation event streams refused because too many were open.",
    ),
    (
        "valet_connection_limit_reached_total",
        Kind::Counter,
        "Connections refused because the connection limit was reached.",
    ),
    (
        "valet_group_commit_batch_size",
        Kind::Histogram,
        "Durable writes that shared one database transaction, by database.",
    ),
    (
        "valet_group_commit_failed_batches_total",
        Kind::Counter,
        "Shared write transactions that failed as a whole, by database.",
    ),
];

enum Kind {
    Counter,
    Histogram,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Held while the recorder is installed, so that of threads calling
/// [`install_metrics`] at once exactly one installs and the others get its handle.
static INSTALLING: Mutex<()> = Mutex::new(());

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
    let _installing = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    // Another thread may have installed it while this one waited.
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("valet_http_request_duration_seconds".into()),
            &LATENCY_BUCKETS,
        )
        .map_err(|error| error.to_string())?
        .set_buckets_for_metric(
            Matcher::Full("valet_group_commit_batch_size".into()),
            &BATCH_SIZE_BUCKETS,
        )
        .map_err(|error| error.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    // Only a recorder installed by something other than this function is left.
    metrics::set_global_recorder(recorder)
        .map_err(|_| "another metrics recorder is installed".to_owned())?;
    for (name, kind, help) in DESCRIPTIONS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads that install at once all get the one handle: none of them sees
    /// the recorder installed but its handle not yet published.
    #[test]
    fn concurrent_installs_all_get_the_handle() {
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(install_metrics))
            .collect();
        for thread in threads {
            let installed = thread.join().map_err(|_| "an installing thread panicked");
            assert!(matches!(installed, Ok(Ok(_))), "{installed:?}");
        }
    }
}
