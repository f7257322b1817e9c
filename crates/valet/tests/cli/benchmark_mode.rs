//! Benchmark mode (`insecure_benchmark_password_hash`): cheap password hashes for
//! load tests, refused off loopback, announced in the log, /metrics and /readyz.

use crate::harness::*;

const MODE_METRIC: &str = "valet_insecure_benchmark_mode";

#[test]
fn benchmark_mode_refuses_a_non_loopback_bind() {
    let dir = temp_dir("bench-mode-public");
    let port = free_port();
    for by_env in [false, true] {
        let mut command = valet(&dir);
        command.args(["serve", "--bind", &format!("0.0.0.0:{port}")]);
        command.args(["--issuer", "https://auth.example.test"]);
        if by_env {
            command.env("VALET_INSECURE_BENCHMARK_PASSWORD_HASH", "true");
        } else {
            command.arg("--insecure-benchmark-password-hash");
        }
        let out = command.output().unwrap();
        assert!(!out.status.success());
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(
            message.contains("insecure_benchmark_password_hash") && message.contains("loopback"),
            "{message}"
        );
    }
    assert!(
        !dir.join("valet-data").exists(),
        "refused before creating anything"
    );
}

#[test]
fn benchmark_mode_warns_and_says_so_in_metrics_and_readiness() {
    let dir = temp_dir("bench-mode-on");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--insecure-benchmark-password-hash");
    let server = Server::start(command, port, dir.join("serve.log"));
    let ready = server.get("/readyz");
    assert_eq!(ready.status, 200);
    assert!(
        ready.body.contains(&format!("{MODE_METRIC} 1")),
        "{}",
        ready.body
    );
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!("\n{MODE_METRIC} 1\n")),
        "{metrics}"
    );
    let log = server.log_text();
    assert!(log.contains("INSECURE BENCHMARK MODE"), "{log}");
    assert!(log.contains("WARN"), "{log}");
}

#[test]
fn a_normal_server_reports_benchmark_mode_off() {
    let (_dir, server) = serve_fresh("bench-mode-off");
    let ready = server.get("/readyz");
    assert_eq!(ready.body, "ready\n");
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!("\n{MODE_METRIC} 0\n")),
        "{metrics}"
    );
    assert!(!server.log_text().contains("BENCHMARK MODE"));
}
