//! The files of `packaging/`: the systemd unit verifies with `systemd-analyze`
//! (skipped loudly without it, unless `VALET_REQUIRE_SYSTEMD_ANALYZE` is set, as
//! in CI), the image and compose files keep their promises, and the compose
//! smoke test (`packaging/smoke.sh`, Docker only, not run by CI) says plainly
//! when it cannot run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(packaging(file)).unwrap()
}

fn systemd_analyze_available() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("VALET_REQUIRE_SYSTEMD_ANALYZE").is_none(),
            "VALET_REQUIRE_SYSTEMD_ANALYZE is set but systemd-analyze is missing (apt-get install systemd)"
        );
        skip(
            "systemd-analyze is not installed (apt-get install systemd); the unit was not verified",
        );
    }
    found
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = read("valet.service");
    for directive in [
        "DynamicUser=yes",
        "StateDirectory=valet",
        "ReadWritePaths=/var/lib/valet",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "LockPersonality=yes",
    ] {
        assert!(unit.contains(directive), "valet.service lacks {directive}");
    }
    if !systemd_analyze_available() {
        return;
    }
    // The unit as installed, with the binary under test where it expects valet.
    let dir = temp_dir("systemd-unit");
    let installed = dir.join("valet.service");
    std::fs::write(
        &installed,
        unit.replace("/usr/local/bin/valet", env!("CARGO_BIN_EXE_valet")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&installed)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    // Warnings (an unknown or misplaced directive) do not fail `verify`: none may appear.
    let warnings: Vec<&str> = report
        .lines()
        .filter(|line| line.contains("valet.service"))
        .collect();
    assert!(warnings.is_empty(), "{report}");
}

#[test]
fn the_image_runs_as_non_root_with_a_health_check() {
    let dockerfile = read("Dockerfile");
    for line in [
        "FROM gcr.io/distroless/cc-debian12:nonroot",
        "USER 65532:65532",
        "CMD [\"/usr/local/bin/valet\", \"healthcheck\"]",
        "VOLUME [\"/var/lib/valet\"]",
        "EXPOSE 8080 9090",
        "cargo build --release --locked -p valet",
    ] {
        assert!(dockerfile.contains(line), "Dockerfile lacks {line}");
    }
    // The rust image the builder uses matches the workspace's toolchain.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .unwrap();
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        dockerfile.contains(&format!("ARG RUST_VERSION={version}")),
        "Dockerfile builds with another Rust than {version}"
    );
    let ignored =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.dockerignore"))
            .unwrap();
    for entry in ["target", ".git", "valet-data"] {
        assert!(ignored.lines().any(|line| line == entry), "{entry}");
    }
}

#[test]
fn the_compose_file_runs_two_nodes_on_postgres_with_the_key_from_outside() {
    let compose = read("compose.yaml");
    for line in [
        "image: docker.io/library/postgres:17",
        "  valet-a:",
        "  valet-b:",
        "command: [\"init\"]",
        "condition: service_completed_successfully",
        "VALET_MASTER_KEY: ${VALET_MASTER_KEY:?",
        "VALET_DATABASE_URL: postgres://valet:${VALET_DB_PASSWORD:?",
    ] {
        assert!(compose.contains(line), "compose.yaml lacks {line}");
    }
}

#[test]
fn the_smoke_test_says_when_docker_is_missing() {
    // A PATH with `dirname` and nothing else: no docker.
    let bin = temp_dir("smoke-path");
    std::os::unix::fs::symlink("/usr/bin/dirname", bin.join("dirname")).unwrap();
    let out = Command::new("/bin/bash")
        .arg(packaging("smoke.sh"))
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Docker is not installed here") && stderr.contains("nothing was tested"),
        "{stderr}"
    );
}

#[test]
fn every_crate_declares_the_project_metadata() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        for field in [
            "description = ",
            "license.workspace = true",
            "repository.workspace = true",
            "homepage.workspace = true",
            "readme.workspace = true",
            "keywords.workspace = true",
            "categories.workspace = true",
            "rust-version.workspace = true",
        ] {
            assert!(text.contains(field), "{} lacks {field}", manifest.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} crates");
    let workspace = std::fs::read_to_string(crates.join("../Cargo.toml")).unwrap();
    let license = std::fs::read_to_string(crates.join("../LICENSE")).unwrap();
    assert!(workspace.contains("license = \"Apache-2.0\""));
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
}
