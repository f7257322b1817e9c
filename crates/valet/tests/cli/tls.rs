//! `valet serve --tls-cert --tls-key`: https served by Valet itself.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A self-signed P-256 end-entity certificate for 127.0.0.1, made with the openssl
/// CLI in two steps (`req -x509` would mark it a CA, which webpki refuses as a
/// server certificate).
fn self_signed(
    dir: &std::path::Path,
    name: &str,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let (csr, ext) = (
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&ext, "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").ok()?;
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let made = run(&[
        os("req"),
        os("-new"),
        os("-newkey"),
        os("ec"),
        os("-pkeyopt"),
        os("ec_paramgen_curve:P-256"),
        os("-nodes"),
        os("-subj"),
        os("/CN=127.0.0.1"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]) && run(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-signkey"),
        key.as_os_str(),
        os("-days"),
        os("1"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ]);
    if made {
        return Some((cert, key));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "openssl is needed on CI for the TLS test"
    );
    skip("openssl not found; the TLS test did not run");
    None
}

#[test]
fn serves_https_with_hsts_and_refuses_mismatched_keys() {
    let dir = temp_dir("tls");
    let Some((cert, key)) = self_signed(&dir, "a") else {
        return;
    };
    let Some((_, other_key)) = self_signed(&dir, "b") else {
        return;
    };
    let port = free_port();

    // A key that is not the certificate's stops the start, naming the setting.
    let out = valet(&dir)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
        ])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tls_key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Half a TLS configuration is refused too.
    let out = valet(&dir)
        .args(["serve", "--tls-cert"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"));

    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let child = valet(&dir)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
        ])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    // Killed even if an assertion below fails.
    let mut child = KillOnDrop(child);
    let pem = std::fs::read(&cert).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let base = format!("https://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match client.get(format!("{base}/readyz")).send().await {
                Ok(reply) if reply.status() == 200 => break,
                Ok(reply) => format!("status {}", reply.status()),
                Err(error) => format!("{error:?}"),
            };
            assert!(Instant::now() < deadline, "not ready over https: {last}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let reply = client
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        let hsts = reply
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned());
        let metadata: serde_json::Value =
            serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
        (metadata, hsts)
    });
    let (metadata, hsts) = outcome;
    assert_eq!(
        metadata["issuer"],
        format!("https://127.0.0.1:{port}"),
        "the issuer defaults to https"
    );
    assert_eq!(hsts.as_deref(), Some("max-age=31536000; includeSubDomains"));
    // Plain http on the TLS port gets no HTTP answer.
    let plain = http(port, "GET", "/readyz", &[], "");
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status != 200));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
