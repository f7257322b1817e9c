//! `valet token decode`

use crate::harness::*;

#[test]
fn decode_shows_header_claims_and_expiry() {
    let (dir, server) = serve_fresh("decode");
    let (id, secret) = create_service_client(&dir, &[]);
    let token = server.token(&id, &secret);
    drop(server);

    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["token", "decode", &token]);
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("at+jwt"), "{text}");
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("UTC"), "{text}");
    assert!(
        text.contains("Expires in 9m") || text.contains("Expires in 10m"),
        "{text}"
    );

    let out = valet(&dir)
        .args(["token", "decode", "not-a-token"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 dot-separated segments"));
}
