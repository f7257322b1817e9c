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
/// the installed packages) with `args` as `process.argv.slice(1)` (with `-e`,
/// `argv` holds no script path).
pub fn run_node_script(script: &str, args: &[&str]) -> Output {
    Command::new("node")
        .current_dir(node_clients_dir())
        .args(["--input-type=module", "-e", script, "--"])
        .args(args)
        .output()
        .expect("node runs")
}

/// A script run as by [`run_node_script`] that the test talks to while it
/// runs: it reads the script's output line by line and may write lines to it
/// (for a client library waiting for the browser's part).
/// (With `-e`, Node.js passes the arguments as `process.argv.slice(1)`.)
pub struct NodeSession {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl NodeSession {
    pub fn start(script: &str, args: &[&str]) -> NodeSession {
        let mut child = Command::new("node")
            .current_dir(node_clients_dir())
            .args(["--input-type=module", "-e", script, "--"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped stdout");
        NodeSession {
            child,
            lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)),
        }
    }

    /// The script's next line of output, parsed as JSON; on its end, a panic
    /// with what it wrote to standard error.
    pub fn next_json(&mut self) -> serde_json::Value {
        match self.lines.next() {
            Some(Ok(line)) => serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("node wrote a line that is not JSON: {line}")),
            _ => {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("the node script ended early: {stderr}");
            }
        }
    }

    /// Writes a line to the script's standard input.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").expect("node reads its input");
    }
}

impl Drop for NodeSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
