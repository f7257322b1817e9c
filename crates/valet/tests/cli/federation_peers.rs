//! Sign-in with other providers, with real OpenID providers as the upstream:
//! a second Valet (over HTTP, and in Chromium) and a node-oidc-provider
//! (`tests/node/upstream_provider.mjs`). The Python fake provider's
//! misbehaviours and the account-linking attacks are in `federation.rs`,
//! whose downstream Valet and helpers these tests share.

use std::process::{Command, Stdio};

use crate::federation::{
    CHALLENGE, Downstream, UP_CLIENT, UP_SECRET, UPSTREAM, VICTIM, VICTIM_EMAIL, VICTIM_PASSWORD,
    assert_code_for_app, assert_unknown_identity, choice_form, split_url,
};
use crate::harness::*;

/// A second Valet as the upstream OpenID provider, on `localhost` (another
/// host than 127.0.0.1 for cookies, as it would be in production).
struct ValetUpstream {
    server: Server,
    dir: std::path::PathBuf,
}

impl ValetUpstream {
    fn start(down: &Downstream) -> (ValetUpstream, String) {
        let dir = temp_dir("fed-valet-upstream");
        let port = free_port();
        let issuer = format!("http://localhost:{port}");
        let mut command = valet(&dir);
        command.args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &issuer,
        ]);
        let server = Server::start(command, port, dir.join("serve.log"));
        let mut create = valet(&dir);
        create.args([
            "client",
            "create",
            "--name",
            "downstream valet",
            "--redirect-uri",
            &down.callback(),
            "--skip-consent",
            "--json",
        ]);
        let client = stdout_json(&run_ok(create));
        let (id, secret) = (
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str().unwrap(),
        );
        down.add_upstream(&[
            "--issuer",
            &issuer,
            "--client-id",
            id,
            "--client-secret",
            secret,
        ]);
        (ValetUpstream { server, dir }, issuer)
    }

    /// The upstream Valet's sign-in, in its own jar: its answer to the downstream.
    fn sign_in(&self, jar: &mut CookieJar, location: &str, user: &str, password: &str) -> String {
        let (port, path) = split_url(location);
        assert_eq!(port, self.server.port);
        let page = jar.send(port, "GET", &path, "");
        assert_eq!(page.status, 200, "{}", page.body);
        let body = form_body(&[
            (
                "interaction",
                &form_field(&page.body, "interaction").unwrap(),
            ),
            ("csrf", &form_field(&page.body, "csrf").unwrap()),
            ("username", user),
            ("password", password),
        ]);
        let reply = jar.send(port, "POST", "/login", &body);
        assert_eq!(reply.status, 303, "{}", reply.body);
        reply.header("location").unwrap().to_owned()
    }
}

#[test]
fn a_second_valet_is_an_openid_upstream() {
    let down = Downstream::serve("fed-valet-down", true);
    let (up, _issuer) = ValetUpstream::start(&down);
    create_user(
        &up.dir,
        "carol",
        "carol@example.test",
        "carol's long passphrase",
    );

    let (mut here, mut there) = (CookieJar::default(), CookieJar::default());
    let to_upstream = down.press_button(&mut here);
    assert!(
        to_upstream.contains("code_challenge_method=S256"),
        "{to_upstream}"
    );
    assert!(to_upstream.contains("nonce="), "{to_upstream}");
    let back = up.sign_in(&mut there, &to_upstream, "carol", "carol's long passphrase");
    assert!(
        back.contains("iss=http%3A%2F%2Flocalhost"),
        "RFC 9207: {back}"
    );
    let unknown = down.back(&mut here, &back);
    assert_unknown_identity(&unknown);
    assert!(
        unknown.body.contains("carol@example.test"),
        "{}",
        unknown.body
    );
    let created = here.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_code_for_app(&created);

    // Signed in at the upstream already: the next sign-in needs no password there.
    let mut here_again = CookieJar::default();
    let to_upstream = down.press_button(&mut here_again);
    let (port, path) = split_url(&to_upstream);
    let answer = there.send(port, "GET", &path, "");
    assert_eq!(answer.status, 303, "{}", answer.body);
    let back = answer.header("location").unwrap().to_owned();
    assert_code_for_app(&down.back(&mut here_again, &back));
}

/// The whole story in Chromium, with a second Valet (on `localhost`) as the
/// provider: the sign-in page's button, the provider's sign-in, the new
/// identity linked to an existing account after its own sign-in and a
/// confirmation, then the provider alone signs the user in to the app.
#[test]
fn chromium_links_a_provider_account_and_signs_in_with_it() {
    use std::time::Duration;

    use crate::webdriver::{Browser, CallbackListener, browser_missing};

    if browser_missing("federation_e2e") {
        return;
    }
    let down = Downstream::serve("fed-chromium", false);
    create_user(&down.dir, VICTIM, VICTIM_EMAIL, VICTIM_PASSWORD);
    let (up, up_origin) = ValetUpstream::start(&down);
    create_user(
        &up.dir,
        "carol",
        "carol@example.test",
        "carol's long passphrase",
    );
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let mut create = valet(&down.dir);
    create.args([
        "client",
        "create",
        "--name",
        "Photo App",
        "--redirect-uri",
        &redirect_uri,
    ]);
    create.args(["--skip-consent", "--json"]);
    let client_id = stdout_json(&run_ok(create))["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let here = format!("http://127.0.0.1:{}", down.port());
    let authorize = format!(
        "{here}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        encode(&redirect_uri)
    );
    let provider_sign_in = |browser: &Browser| {
        browser.click(&browser.find(&format!("button#upstream-{UPSTREAM}")));
        // Both sign-in pages have an input#username: wait to be at the provider's.
        browser.wait_for_url(&up_origin, Duration::from_secs(30));
        browser.send_keys(&browser.find("input#username"), "carol");
        browser.send_keys(&browser.find("input#password"), "carol's long passphrase");
        browser.click(&browser.find("form button[type=submit]"));
    };

    let profile = down.dir.join("chromium-a");
    std::fs::create_dir_all(&profile).unwrap();
    let mut browser = Browser::start(&profile);
    browser.navigate(&authorize);
    provider_sign_in(&browser);
    browser.click(&browser.find("button#link-account"));
    // The account page's own sign-in, with the local password.
    browser.send_keys(&browser.find("input#username"), VICTIM);
    browser.send_keys(&browser.find("input#password"), VICTIM_PASSWORD);
    browser.click(&browser.find("form button[type=submit]"));
    browser.find("#pending-upstream-link");
    browser.click(&browser.find("a#upstreams-link"));
    browser.click(&browser.find("button#confirm-link"));
    let notice = browser.text(&browser.find("#notice"));
    assert_eq!(notice, "corp is linked.");
    browser.quit();

    // Another browser: the provider alone signs the user in to the app.
    let profile = down.dir.join("chromium-b");
    std::fs::create_dir_all(&profile).unwrap();
    let mut browser = Browser::start(&profile);
    browser.navigate(&authorize);
    provider_sign_in(&browser);
    let landed = browser.wait_for_url(&redirect_uri, Duration::from_secs(30));
    assert!(landed.contains("code="), "{landed}");
    let request_line = callback.request_line(Duration::from_secs(30));
    assert!(request_line.contains("code="), "{request_line}");
    browser.quit();
    eventually("the upstream sign-in in the audit trail", || {
        let mut audit = valet(&down.dir);
        audit.args(["audit", "--json"]);
        String::from_utf8(run_ok(audit).stdout)
            .unwrap()
            .contains("upstream.sign_in")
    });
}

/// A node-oidc-provider (`tests/node/upstream_provider.mjs`) as the upstream,
/// driven through its development sign-in and consent forms.
#[test]
fn node_oidc_provider_is_an_openid_upstream() {
    use valet_test_support::node::node_package_available;

    if !node_package_available("oidc-provider", "the node-oidc-provider upstream") {
        return;
    }
    let down = Downstream::serve("fed-node", true);
    let (_provider, issuer) = node_provider(&down);

    let (mut here, mut there) = (CookieJar::default(), CookieJar::default());
    let mut location = down.press_button(&mut here);
    // The provider's redirects, sign-in form and consent form, to its answer.
    for _ in 0..10 {
        let (port_now, path) = split_url(&absolute(&location, &issuer));
        if port_now == down.port() {
            break;
        }
        let mut reply = there.send(port_now, "GET", &path, "");
        if path.starts_with("/interaction/") && reply.status == 200 {
            let prompt = form_field(&reply.body, "prompt").unwrap_or_default();
            let body = form_body(&[("prompt", &prompt), ("login", "nora"), ("password", "any")]);
            reply = there.send(port_now, "POST", &path, &body);
        }
        assert!(
            (300..400).contains(&reply.status),
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        location = reply.header("location").unwrap().to_owned();
    }
    assert!(
        location.contains("iss=http%3A%2F%2Flocalhost"),
        "{location}"
    );
    let unknown = down.back(&mut here, &location);
    assert_unknown_identity(&unknown);
    assert!(
        unknown.body.contains("nora@node.example.test"),
        "the email from its userinfo: {}",
        unknown.body
    );
    let created = here.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_code_for_app(&created);
    let users = down.users();
    assert_eq!(users[0]["email"], "nora@node.example.test");
    assert_eq!(users[0]["email_verified"], true);
}

/// Starts a node-oidc-provider (`tests/node/upstream_provider.mjs`) that
/// answers to `down`'s callback, and adds it to `down` as the upstream; returns
/// the running provider and its issuer.
fn node_provider(down: &Downstream) -> (Server, String) {
    use valet_test_support::node::node_clients_dir;

    let port = free_port();
    let mut command = Command::new("node");
    command
        .current_dir(node_clients_dir())
        .args([
            "upstream_provider.mjs",
            &port.to_string(),
            UP_CLIENT,
            UP_SECRET,
        ])
        .arg(down.callback())
        .stdin(Stdio::null());
    let provider = Server::start_unready(command, port, down.dir.join("node-provider.log"));
    let issuer = format!("http://localhost:{port}");
    down.add_upstream(&[
        "--issuer",
        &issuer,
        "--client-id",
        UP_CLIENT,
        "--client-secret",
        UP_SECRET,
    ]);
    (provider, issuer)
}

/// node-oidc-provider as the upstream in Chromium: its own sign-in and consent
/// pages, then Valet's page for a new identity creates the account, and the app
/// receives its code.
#[test]
fn chromium_signs_up_through_node_oidc_provider() {
    use std::time::Duration;

    use valet_test_support::node::node_package_available;

    use crate::webdriver::{Browser, CallbackListener, browser_missing};

    if browser_missing("federation_node_e2e")
        || !node_package_available("oidc-provider", "the node-oidc-provider upstream")
    {
        return;
    }
    let down = Downstream::serve("fed-node-chromium", true);
    let (_provider, issuer) = node_provider(&down);
    let callback = CallbackListener::start();
    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.port);
    let mut create = valet(&down.dir);
    create.args([
        "client",
        "create",
        "--name",
        "Photo App",
        "--redirect-uri",
        &redirect_uri,
        "--skip-consent",
        "--json",
    ]);
    let client_id = stdout_json(&run_ok(create))["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let authorize = format!(
        "http://127.0.0.1:{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        down.port(),
        encode(&redirect_uri)
    );

    let profile = down.dir.join("chromium");
    std::fs::create_dir_all(&profile).unwrap();
    let mut browser = Browser::start(&profile);
    browser.navigate(&authorize);
    browser.click(&browser.find(&format!("button#upstream-{UPSTREAM}")));
    browser.wait_for_url(&issuer, Duration::from_secs(30));
    // node-oidc-provider's development sign-in: any login, any password.
    browser.send_keys(&browser.find("input[name=login]"), "nora");
    browser.send_keys(&browser.find("input[name=password]"), "any password");
    browser.click(&browser.find("input[name=prompt][value=login] ~ button[type=submit]"));
    browser.click(&browser.find("input[name=prompt][value=consent] ~ button[type=submit]"));
    // Back at Valet: a new identity, with the provider's verified email.
    let identity = browser.text(&browser.find("#upstream-identity"));
    assert!(identity.contains("nora@node.example.test"), "{identity}");
    browser.click(&browser.find("button#create-account"));
    let landed = browser.wait_for_url(&redirect_uri, Duration::from_secs(30));
    assert!(landed.contains("code="), "{landed}");
    let request_line = callback.request_line(Duration::from_secs(30));
    assert!(request_line.contains("code="), "{request_line}");
    browser.quit();
    let users = down.users();
    assert_eq!(users[0]["email"], "nora@node.example.test");
    assert_eq!(users[0]["email_verified"], true);
}

/// `location` made absolute against `origin` when it is a path.
fn absolute(location: &str, origin: &str) -> String {
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        location.to_owned()
    }
}
