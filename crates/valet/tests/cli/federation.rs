//! Sign-in with other providers ("Sign in with …"), from the outside: a small
//! OpenID and OAuth 2 provider in Python (`fake_provider.py`, jwcrypto) that
//! can misbehave on request, and a second Valet as the upstream. The
//! browser is a cookie jar per host, as a browser keeps them.
//!
//! What must hold: a linked identity signs in; an unknown one gets a choice
//! (a new account, or a link that needs the local account's own sign-in and
//! a confirmation); no email, verified or not, ever reaches a local account;
//! state is single-use and bound to the browser; a wrong `iss`, `aud`,
//! `nonce`, signature or expiry, and a provider error, are a page, and
//! nothing is created.

use std::process::{Command, Stdio};

use crate::harness::*;

pub(crate) const UPSTREAM: &str = "corp";
pub(crate) const APP_REDIRECT: &str = "http://127.0.0.1:9/cb";
pub(crate) const UP_CLIENT: &str = "valet-downstream";
pub(crate) const UP_SECRET: &str = "fake-provider-secret";
pub(crate) const VICTIM: &str = "victim";
pub(crate) const VICTIM_EMAIL: &str = "victim@example.test";
pub(crate) const VICTIM_PASSWORD: &str = "Tr0ub4dor&3 victim horse";
/// An S256 challenge (its verifier is never needed: no code is redeemed here).
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Whether python3 with jwcrypto can run the fake provider; says so loudly
/// (or fails under `VALET_REQUIRE_JWCRYPTO`) when not.
fn jwcrypto_available(test: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("VALET_REQUIRE_JWCRYPTO").is_none(),
            "VALET_REQUIRE_JWCRYPTO is set but python3 with jwcrypto is missing"
        );
        println!("SKIPPED: {test}: python3 with jwcrypto not found (pip install jwcrypto)");
    }
    found
}

/// The fake provider as a process.
struct Provider {
    pub(crate) server: Server,
}

impl Provider {
    fn start(dir: &std::path::Path) -> Provider {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/fake_provider.py");
        let mut command = Command::new("python3");
        command
            .args([script, &port.to_string(), UP_CLIENT, UP_SECRET])
            .stdin(Stdio::null());
        let server = Server::start_unready(command, port, dir.join("provider.log"));
        Provider { server }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// Sets who the provider signs in next, and how it misbehaves.
    fn set(&self, sub: &str, email: &str, verified: bool, mode: &str) {
        let query = format!(
            "/control?sub={}&email={}&email_verified={verified}&mode={mode}",
            encode(sub),
            encode(email)
        );
        assert_eq!(self.server.get(&query).status, 200);
    }
}

/// The Valet users sign in to.
pub(crate) struct Downstream {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) server: Server,
    client_id: String,
}

impl Downstream {
    pub(crate) fn serve(label: &str, registration_open: bool) -> Downstream {
        Self::serve_with(label, registration_open, &[])
    }

    pub(crate) fn serve_with(
        label: &str,
        registration_open: bool,
        env: &[(&str, &str)],
    ) -> Downstream {
        let dir = temp_dir(label);
        let port = free_port();
        let mut command = valet(&dir);
        command.args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
        command.envs(env.iter().copied());
        if registration_open {
            // Open registration needs mail (nothing here reads it).
            command
                .env("VALET_REGISTRATION", "open")
                .env(
                    "VALET_SMTP_URL",
                    format!("smtp://127.0.0.1:{}", free_port()),
                )
                .env("VALET_MAIL_FROM", "Valet <valet@example.test>");
        }
        let server = Server::start(command, port, dir.join("serve.log"));
        let mut create = valet(&dir);
        create.args([
            "client",
            "create",
            "--name",
            "app",
            "--redirect-uri",
            APP_REDIRECT,
            "--skip-consent",
            "--json",
        ]);
        let client_id = stdout_json(&run_ok(create))["client_id"]
            .as_str()
            .unwrap()
            .to_owned();
        Downstream {
            dir,
            server,
            client_id,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.server.port
    }

    pub(crate) fn callback(&self) -> String {
        format!(
            "http://127.0.0.1:{}/upstream/{UPSTREAM}/callback",
            self.port()
        )
    }

    pub(crate) fn add_upstream(&self, args: &[&str]) {
        let mut command = valet(&self.dir);
        command
            .args(["upstream", "add", "--name", UPSTREAM])
            .args(args);
        run_ok(command);
    }

    fn add_fake_oidc(&self, provider: &Provider) {
        let issuer = provider.issuer();
        self.add_upstream(&[
            "--issuer",
            &issuer,
            "--client-id",
            UP_CLIENT,
            "--client-secret",
            UP_SECRET,
        ]);
    }

    pub(crate) fn users(&self) -> serde_json::Value {
        let mut command = valet(&self.dir);
        command.args(["user", "list", "--json"]);
        stdout_json(&run_ok(command))
    }

    pub(crate) fn user_count(&self) -> usize {
        self.users().as_array().unwrap().len()
    }

    /// An authorization request in `jar`: the sign-in page's interaction
    /// and CSRF values.
    pub(crate) fn open_sign_in(&self, jar: &mut CookieJar) -> (String, String) {
        let path = format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=app-state&code_challenge={CHALLENGE}&code_challenge_method=S256",
            self.client_id,
            encode(APP_REDIRECT)
        );
        let page = jar.send(self.port(), "GET", &path, "");
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(&format!("id=\"upstream-{UPSTREAM}\"")),
            "the sign-in page offers the provider: {}",
            page.body
        );
        (
            form_field(&page.body, "interaction").unwrap(),
            form_field(&page.body, "csrf").unwrap(),
        )
    }

    /// The sign-in page's provider button: where the browser is sent.
    pub(crate) fn press_button(&self, jar: &mut CookieJar) -> String {
        let (interaction, csrf) = self.open_sign_in(jar);
        let body = form_body(&[("interaction", &interaction), ("csrf", &csrf)]);
        let path = format!("/upstream/{UPSTREAM}/start");
        let reply = jar.send(self.port(), "POST", &path, &body);
        assert_eq!(reply.status, 303, "{}", reply.body);
        reply.header("location").unwrap().to_owned()
    }

    /// The provider's redirect back, followed in `jar`.
    pub(crate) fn back(&self, jar: &mut CookieJar, location: &str) -> Reply {
        let (port, path) = split_url(location);
        assert_eq!(port, self.port(), "back to this Valet: {location}");
        jar.send(port, "GET", &path, "")
    }
}

/// The port and path of an http URL on 127.0.0.1 or localhost.
pub(crate) fn split_url(url: &str) -> (u16, String) {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| url.strip_prefix("http://localhost:"))
        .unwrap_or_else(|| panic!("not a local URL: {url}"));
    let (port, path) = rest.split_at(rest.find('/').unwrap());
    (port.parse().unwrap(), path.to_owned())
}

/// The fake provider answers at once: its redirect back to Valet.
fn fake_provider_answer(location: &str) -> String {
    let (port, path) = split_url(location);
    let reply = http(port, "GET", &path, &[], "").unwrap();
    assert_eq!(reply.status, 302, "{}", reply.body);
    reply.header("location").unwrap().to_owned()
}

/// A whole upstream sign-in in a new browser, to Valet's answer.
fn sign_in_with_fake(down: &Downstream, jar: &mut CookieJar) -> Reply {
    let to_provider = down.press_button(jar);
    let back = fake_provider_answer(&to_provider);
    down.back(jar, &back)
}

/// Valet sent the browser on to the app with a code.
pub(crate) fn assert_code_for_app(reply: &Reply) {
    assert_eq!(reply.status, 303, "{}", reply.body);
    let location = reply.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{APP_REDIRECT}?code=")),
        "{location}"
    );
}

pub(crate) fn assert_unknown_identity(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains("New sign-in with corp"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("id=\"link-account\""), "{}", reply.body);
}

pub(crate) fn choice_form(reply: &Reply) -> String {
    form_body(&[
        ("identity", &form_field(&reply.body, "identity").unwrap()),
        ("csrf", &form_field(&reply.body, "csrf").unwrap()),
    ])
}

#[test]
fn a_new_identity_gets_an_account_and_signs_in_again() {
    if !jwcrypto_available("federation new identity") {
        return;
    }
    let down = Downstream::serve("fed-new", true);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    provider.set("new-1", "new1@example.test", true, "good");

    let mut jar = CookieJar::default();
    let unknown = sign_in_with_fake(&down, &mut jar);
    assert_unknown_identity(&unknown);
    assert!(unknown.body.contains("id=\"create-account\""));
    assert!(!jar.has("valet-session"), "not signed in yet");
    let created = jar.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_code_for_app(&created);
    assert!(jar.has("valet-session"));
    let users = down.users();
    let user = users
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["email"] == "new1@example.test")
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(
        user["email_verified"], true,
        "the provider verified it and nobody has it"
    );

    // The identity is linked: a new browser signs in at once.
    let mut again = CookieJar::default();
    assert_code_for_app(&sign_in_with_fake(&down, &mut again));
    assert_eq!(down.user_count(), 1);
}

#[test]
fn a_verified_email_of_a_local_account_never_reaches_it() {
    if !jwcrypto_available("federation hijack") {
        return;
    }
    let down = Downstream::serve("fed-hijack", true);
    create_user(&down.dir, VICTIM, VICTIM_EMAIL, VICTIM_PASSWORD);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    // The attacker's provider account claims the victim's email, verified.
    provider.set("attacker", VICTIM_EMAIL, true, "good");

    let mut attacker = CookieJar::default();
    let unknown = sign_in_with_fake(&down, &mut attacker);
    assert_unknown_identity(&unknown);
    assert!(!attacker.has("valet-session"), "not signed in as anyone");

    // A new account with that email is refused: it would take it over.
    let create = attacker.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_eq!(create.status, 409, "{}", create.body);
    assert!(
        create
            .body
            .contains("An account with this email address exists")
    );
    assert_eq!(down.user_count(), 1, "nothing created");

    // Linking asks for the victim's own sign-in, which the attacker cannot give.
    let unknown = sign_in_with_fake(&down, &mut attacker);
    let keep = attacker.send(
        down.port(),
        "POST",
        "/upstream/identity/link",
        &choice_form(&unknown),
    );
    assert_eq!(keep.status, 303, "{}", keep.body);
    let page = attacker.send(down.port(), "GET", "/account/upstreams", "");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("name=\"password\""),
        "the sign-in page: {}",
        page.body
    );
    let body = form_body(&[
        (
            "interaction",
            &form_field(&page.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&page.body, "csrf").unwrap()),
        ("username", VICTIM_EMAIL),
        ("password", "a guess"),
    ]);
    let refused = attacker.send(down.port(), "POST", "/login", &body);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(!attacker.has("valet-session"));

    // Still not linked: the identity is still unknown.
    let mut later = CookieJar::default();
    assert_unknown_identity(&sign_in_with_fake(&down, &mut later));
}

/// Signs in to the account page in `jar` with the victim's password.
fn sign_in_to_account(down: &Downstream, jar: &mut CookieJar) {
    let page = jar.send(down.port(), "GET", "/account/upstreams", "");
    assert_eq!(page.status, 200);
    let body = form_body(&[
        (
            "interaction",
            &form_field(&page.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&page.body, "csrf").unwrap()),
        ("username", VICTIM),
        ("password", VICTIM_PASSWORD),
    ]);
    let signed_in = jar.send(down.port(), "POST", "/login", &body);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(jar.has("valet-session"));
}

#[test]
fn linking_needs_the_local_sign_in_and_a_confirmation() {
    if !jwcrypto_available("federation linking") {
        return;
    }
    let down = Downstream::serve("fed-link", false);
    create_user(&down.dir, VICTIM, VICTIM_EMAIL, VICTIM_PASSWORD);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    provider.set("victim-at-corp", VICTIM_EMAIL, true, "good");

    let mut jar = CookieJar::default();
    let unknown = sign_in_with_fake(&down, &mut jar);
    assert_unknown_identity(&unknown);
    assert!(
        !unknown.body.contains("id=\"create-account\""),
        "registration is closed"
    );
    let keep = jar.send(
        down.port(),
        "POST",
        "/upstream/identity/link",
        &choice_form(&unknown),
    );
    assert_eq!(keep.status, 303);
    sign_in_to_account(&down, &mut jar);
    let page = jar.send(down.port(), "GET", "/account/upstreams", "");
    assert!(page.body.contains("id=\"confirm-link\""), "{}", page.body);
    assert!(
        page.body.contains("id=\"no-links\""),
        "nothing linked before the confirmation"
    );
    let csrf = form_field(&page.body, "csrf").unwrap();

    // A form without this session's CSRF value changes nothing.
    let forged = jar.send(
        down.port(),
        "POST",
        "/account/upstreams",
        "action=link&csrf=forged",
    );
    assert_eq!(forged.status, 403);

    let linked = jar.send(
        down.port(),
        "POST",
        "/account/upstreams",
        &form_body(&[("action", "link"), ("csrf", &csrf)]),
    );
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert!(linked.body.contains("corp is linked."), "{}", linked.body);

    // The provider now signs the victim in (password users have no second factor here).
    let mut fresh = CookieJar::default();
    assert_code_for_app(&sign_in_with_fake(&down, &mut fresh));

    // Removed, it no longer does.
    let body = form_body(&[
        ("action", "unlink"),
        ("csrf", &csrf),
        ("upstream", UPSTREAM),
        ("subject", "victim-at-corp"),
    ]);
    let unlinked = jar.send(down.port(), "POST", "/account/upstreams", &body);
    assert_eq!(unlinked.status, 200, "{}", unlinked.body);
    assert!(unlinked.body.contains("corp is no longer linked."));
    let mut after = CookieJar::default();
    assert_unknown_identity(&sign_in_with_fake(&down, &mut after));
}

#[test]
fn refused_answers_are_pages_and_create_nothing() {
    if !jwcrypto_available("federation refusals") {
        return;
    }
    let down = Downstream::serve("fed-refusals", true);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    for (mode, status, words) in [
        ("bad_nonce", 400, "Sign-in refused"),
        ("bad_aud", 400, "Sign-in refused"),
        ("bad_iss", 400, "Sign-in refused"),
        ("bad_sig", 400, "Sign-in refused"),
        ("expired", 400, "Sign-in refused"),
        ("wrong_iss_param", 400, "did not come from the provider"),
        ("no_iss_param", 400, "did not come from the provider"),
        ("deny", 400, "You did not allow the sign-in"),
        ("token_error", 502, "Provider unavailable"),
    ] {
        provider.set("someone", "someone@example.test", true, mode);
        let mut jar = CookieJar::default();
        let reply = sign_in_with_fake(&down, &mut jar);
        assert_eq!(reply.status, status, "{mode}: {}", reply.body);
        assert!(reply.body.contains(words), "{mode}: {}", reply.body);
        assert!(!jar.has("valet-session"), "{mode}");
    }
    assert_eq!(down.user_count(), 0, "nothing created");
    eventually("the failures in the audit trail", || {
        let mut audit = valet(&down.dir);
        audit.args(["audit", "--json"]);
        String::from_utf8(run_ok(audit).stdout)
            .unwrap()
            .contains("upstream.failed")
    });
}

#[test]
fn state_is_single_use_and_bound_to_the_browser() {
    if !jwcrypto_available("federation state") {
        return;
    }
    let down = Downstream::serve("fed-state", true);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    provider.set("someone", "someone@example.test", true, "good");

    // Replayed in the same browser.
    let mut jar = CookieJar::default();
    let back = fake_provider_answer(&down.press_button(&mut jar));
    assert_unknown_identity(&down.back(&mut jar, &back));
    let replay = down.back(&mut jar, &back);
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("Sign-in expired"));

    // Taken to another browser (a login CSRF): refused there, and spent.
    let mut victim = CookieJar::default();
    let back = fake_provider_answer(&down.press_button(&mut victim));
    let mut other = CookieJar::default();
    down.open_sign_in(&mut other);
    let foreign = down.back(&mut other, &back);
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(foreign.body.contains("started in another browser"));
    let mut no_cookies = CookieJar::default();
    assert_eq!(down.back(&mut no_cookies, &back).status, 400);
    assert_eq!(down.user_count(), 0);

    // No such provider: a page, not an error.
    let unknown = down.server.get("/upstream/No-Such/callback?state=x&code=y");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.body.contains("Unknown provider"));
}

#[test]
fn an_oauth2_provider_signs_in_through_its_userinfo() {
    if !jwcrypto_available("federation oauth2") {
        return;
    }
    let down = Downstream::serve("fed-oauth2", true);
    let provider = Provider::start(&down.dir);
    let issuer = provider.issuer();
    down.add_upstream(&[
        "--kind",
        "oauth2",
        "--client-id",
        UP_CLIENT,
        "--client-secret",
        UP_SECRET,
        "--authorization-endpoint",
        &format!("{issuer}/authorize"),
        "--token-endpoint",
        &format!("{issuer}/token"),
        "--userinfo-endpoint",
        &format!("{issuer}/userinfo"),
        "--subject-claim",
        "id",
        "--email-claim",
        "mail",
        "--name-claim",
        "login",
        "--scope",
        "read:user",
    ]);
    // GitHub style: a numeric id, and no iss in the answer.
    provider.set("4242", "octo@example.test", true, "no_iss_param");
    let mut jar = CookieJar::default();
    let unknown = sign_in_with_fake(&down, &mut jar);
    assert_unknown_identity(&unknown);
    assert!(
        unknown.body.contains("octo@example.test"),
        "{}",
        unknown.body
    );
    let created = jar.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_code_for_app(&created);
    let users = down.users();
    let user = &users.as_array().unwrap()[0];
    assert_eq!(user["email"], "octo@example.test");
    assert_eq!(
        user["email_verified"], false,
        "userinfo did not say it is verified"
    );
    let mut again = CookieJar::default();
    assert_code_for_app(&sign_in_with_fake(&down, &mut again));
}

#[test]
fn upstream_commands_add_list_show_and_remove() {
    if !jwcrypto_available("federation commands") {
        return;
    }
    let dir = init_dir("fed-commands");
    let provider = Provider::start(&dir);
    let issuer = provider.issuer();
    let mut add = valet(&dir);
    add.args(["upstream", "add", "--name", "corp", "--issuer", &issuer]);
    add.args(["--client-id", UP_CLIENT, "--client-secret", UP_SECRET]);
    let out = String::from_utf8(run_ok(add).stdout).unwrap();
    assert!(out.contains("/upstream/corp/callback"), "{out}");

    let mut show = valet(&dir);
    show.args(["upstream", "show", "corp", "--json"]);
    let shown = stdout_json(&run_ok(show));
    assert_eq!(shown["issuer"], issuer.as_str());
    assert_eq!(
        shown["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );
    assert!(
        !shown.to_string().contains(UP_SECRET),
        "the secret is never shown"
    );

    for (args, words) in [
        (vec!["--name", "Bad Name", "--issuer", &issuer], "name"),
        (vec!["--name", "corp", "--issuer", &issuer], "exists"),
        (
            vec!["--name", "down", "--issuer", "http://127.0.0.1:1"],
            "discovery",
        ),
        (
            vec!["--name", "plain", "--kind", "oauth2"],
            "authorization_endpoint",
        ),
        (
            vec!["--name", "web", "--issuer", "http://example.com"],
            "https",
        ),
    ] {
        let mut add = valet(&dir);
        add.args([
            "upstream",
            "add",
            "--client-id",
            "x",
            "--client-secret",
            "y",
        ])
        .args(&args);
        let out = add.output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(error.contains(words), "{args:?}: {error}");
    }

    let mut list = valet(&dir);
    list.args(["upstream", "list", "--json"]);
    assert_eq!(stdout_json(&run_ok(list)).as_array().unwrap().len(), 1);
    let mut remove = valet(&dir);
    remove.args(["upstream", "remove", "corp"]);
    run_ok(remove);
    let mut show = valet(&dir);
    show.args(["upstream", "show", "corp"]);
    assert!(!show.output().unwrap().status.success());
}

#[test]
fn the_provider_is_one_factor_of_two() {
    if !jwcrypto_available("federation factors") {
        return;
    }
    // Two factors required for everyone: the provider's sign-in is only the first.
    let down = Downstream::serve_with("fed-mfa", true, &[("VALET_MFA", "required")]);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    provider.set("mfa-1", "mfa1@example.test", true, "good");
    let mut jar = CookieJar::default();
    let unknown = sign_in_with_fake(&down, &mut jar);
    let created = jar.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created.body.contains("Set up two-factor sign-in"),
        "a second factor is asked for: {}",
        created.body
    );
    assert!(!jar.has("valet-session"), "no session on one factor");
}

#[test]
fn a_disabled_user_and_a_last_link_are_refused() {
    if !jwcrypto_available("federation disabled") {
        return;
    }
    let down = Downstream::serve("fed-disabled", true);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    provider.set("only-way", "only@example.test", true, "good");
    let mut jar = CookieJar::default();
    let unknown = sign_in_with_fake(&down, &mut jar);
    let created = jar.send(
        down.port(),
        "POST",
        "/upstream/identity/create",
        &choice_form(&unknown),
    );
    assert_code_for_app(&created);

    // No password, no passkey: the provider is the only way in, so it stays.
    let page = jar.send(down.port(), "GET", "/account/upstreams", "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("only-way"), "{}", page.body);
    let body = form_body(&[
        ("action", "unlink"),
        ("csrf", &form_field(&page.body, "csrf").unwrap()),
        ("upstream", UPSTREAM),
        ("subject", "only-way"),
    ]);
    let refused = jar.send(down.port(), "POST", "/account/upstreams", &body);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("your only way to sign in"));

    // Disabled, the linked user is refused.
    let mut disable = valet(&down.dir);
    disable.args(["user", "disable", "only"]);
    run_ok(disable);
    let mut again = CookieJar::default();
    let reply = sign_in_with_fake(&down, &mut again);
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("Account disabled"));
    assert!(!again.has("valet-session"));
}

#[test]
fn a_provider_that_is_down_is_a_page() {
    if !jwcrypto_available("federation provider down") {
        return;
    }
    let down = Downstream::serve("fed-down", true);
    let provider = Provider::start(&down.dir);
    down.add_fake_oidc(&provider);
    provider.set("someone", "someone@example.test", true, "good");
    let mut jar = CookieJar::default();
    let back = fake_provider_answer(&down.press_button(&mut jar));
    // The provider goes away before the code is exchanged.
    drop(provider);
    let reply = down.back(&mut jar, &back);
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        reply.body.contains("Provider unavailable"),
        "{}",
        reply.body
    );
    assert!(!jar.has("valet-session"));
    assert_eq!(down.user_count(), 0);
}
