//! No secret reaches the server's log, even at debug level: client secrets,
//! passwords (right or wrong), the master key, codes, access, refresh and ID
//! tokens, session and CSRF cookie values.

use crate::harness::*;

const PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "tr0ub4dor&3-wrong";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

#[test]
fn a_full_run_logs_no_secret() {
    let dir = temp_dir("secrets");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .env("VALET_LOG", "debug")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    let mut server = Server::start(command, port, dir.join("serve.log"));
    let mut secrets: Vec<String> = Vec::new();

    let (service_id, service_secret) = create_service_client(&dir, &[]);
    secrets.push(service_secret.clone());
    create_user(&dir, "alice", "alice@example.test", PASSWORD);
    secrets.extend([PASSWORD.to_owned(), WRONG_PASSWORD.to_owned()]);
    let web = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "web",
            "--redirect-uri",
            REDIRECT,
            "--skip-consent",
            "--json",
        ]);
        c
    }));
    let (web_id, web_secret) = (
        web["client_id"].as_str().unwrap().to_owned(),
        web["client_secret"].as_str().unwrap().to_owned(),
    );
    secrets.push(web_secret.clone());
    secrets.push(
        std::fs::read_to_string(dir.join("valet-data/master.key"))
            .unwrap()
            .trim()
            .to_owned(),
    );

    // Service tokens: issue, introspect, a wrong secret, revoke.
    let access = server.token(&service_id, &service_secret);
    secrets.push(access.clone());
    server.introspect(&service_id, &service_secret, &access);
    server.post_form(
        "/token",
        Some((&service_id, "vcs_wrong-secret-value")),
        "grant_type=client_credentials",
    );
    secrets.push("vcs_wrong-secret-value".to_owned());
    server.post_form(
        "/revoke",
        Some((&service_id, &service_secret)),
        &format!("token={access}"),
    );

    // A sign-in with a wrong then a right password, the code, refresh, reuse, logout.
    let verifier = "v".repeat(50);
    let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
    let path = format!(
        "/authorize?response_type=code&client_id={web_id}&redirect_uri={}&scope=openid%20offline_access&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
        encode(REDIRECT)
    );
    let mut jar = CookieJar::default();
    let page = jar.send(server.port, "GET", &path, "");
    let form = |page: &Reply, password: &str| {
        format!(
            "interaction={}&csrf={}&username=alice&password={}",
            form_field(&page.body, "interaction").unwrap(),
            form_field(&page.body, "csrf").unwrap(),
            encode(password)
        )
    };
    let retry = jar.send(server.port, "POST", "/login", &form(&page, WRONG_PASSWORD));
    assert_eq!(retry.status, 401);
    let back = jar.send(server.port, "POST", "/login", &form(&retry, PASSWORD));
    assert_eq!(back.status, 303, "{}", back.body);
    secrets.extend(jar.0.values().cloned());
    let location = back.header("location").unwrap().to_owned();
    let code = form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    secrets.push(code.clone());
    let tokens = server
        .post_form(
            "/token",
            Some((&web_id, &web_secret)),
            &format!("grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={verifier}", encode(REDIRECT)),
        )
        .json();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    secrets.extend([
        refresh.clone(),
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["id_token"].as_str().unwrap().to_owned(),
    ]);
    let next = server
        .post_form(
            "/token",
            Some((&web_id, &web_secret)),
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
        )
        .json();
    secrets.push(next["refresh_token"].as_str().unwrap().to_owned());
    let reuse = server.post_form(
        "/token",
        Some((&web_id, &web_secret)),
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    );
    assert_eq!(reuse.status, 400);
    jar.send(
        server.port,
        "GET",
        &format!(
            "/logout?id_token_hint={}",
            next["id_token"].as_str().unwrap()
        ),
        "",
    );

    // A clean stop writes the last audit records too.
    assert!(
        server
            .terminate(std::time::Duration::from_secs(10))
            .is_some_and(|status| status.success())
    );
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    // The run was logged (so the search looked at something), security events included.
    for event in [
        "refresh_token.reused",
        "login.failed",
        "login.succeeded",
        "token.issued",
        "logout",
    ] {
        assert!(log.contains(&format!("event={event}")), "{event}: {log}");
    }
    for secret in &secrets {
        assert!(!secret.is_empty());
        // Tokens are long; their signatures or random parts would show as a substring.
        let needle = if secret.len() > 40 {
            &secret[secret.len() - 40..]
        } else {
            secret.as_str()
        };
        assert!(
            !log.contains(needle),
            "a secret ({}…) is in the log",
            &secret[..secret.len().min(6)]
        );
    }
}
