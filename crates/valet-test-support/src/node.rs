//! Independent client libraries on Node.js (`tests/node/`: openid-client, the
//! MCP SDK), installed with `npm ci --prefix tests/node`. A test hands a script
//! to [`run_node_script`]; without Node.js or the installed packages it skips
//! loudly, and fails instead when `VALET_REQUIRE_NODE` is set (CI).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::postgres::skip;

/// The `tests/node` folder of the workspace.
pub fn node_clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node")
}

/// Whether `node` runs and `package` is installed under `tests/node`; skips loudly
/// (naming `what`) when not, or panics under `VALET_REQUIRE_NODE`.
pub fn node_package_available(package: &str, what: &str) -> bool {
    let node_runs = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let installed = node_clients_dir()
        .join("node_modules")
        .join(package)
        .join("package.json")
        .is_file();
    if node_runs && installed {
        return true;
    }
    assert!(
        std::env::var_os("VALET_REQUIRE_NODE").is_none(),
        "VALET_REQUIRE_NODE is set but node or the {package} package is missing (npm ci --prefix tests/node)"
    );
    skip(&format!(
        "node or the {package} package is missing (npm ci --prefix tests/node); {what} did not run"
    ));
    false
}

/// Runs `script` as an ES module inside `tests/node` (so its imports resolve to
/// the installed packages) with `args` as `process.argv.slice(2)`.
pub fn run_node_script(script: &str, args: &[&str]) -> Output {
    Command::new("node")
        .current_dir(node_clients_dir())
        .args(["--input-type=module", "-e", script, "--"])
        .args(args)
        .output()
        .expect("node runs")
}
