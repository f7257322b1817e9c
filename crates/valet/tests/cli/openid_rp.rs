//! A real relying party against `valet serve`: the `openidconnect` crate discovers
//! the provider, builds the authentication request (PKCE S256, nonce, state),
//! redeems the code, verifies the ID token, calls UserInfo and refreshes. Only the
//! user's part (login and consent pages) is driven by hand, cookies included.
//!
//! The crate talks HTTP through `rp_http`, an `AsyncHttpClient` over the harness's
//! client, so no HTTP or TLS stack is pulled in for it. It accepts a plain-http
//! issuer as it is: discovery only requires the `issuer` to equal the URL asked for.

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::http::{HeaderName, HeaderValue, StatusCode};
use openidconnect::url::Url;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenResponse,
};

use crate::harness::*;

const USERNAME: &str = "rp-alice";
const PASSWORD: &str = "correct horse battery staple";
/// Never visited: the redirect to it is read from the Location header.
const REDIRECT_URI: &str = "https://rp.example.test/callback";

#[tokio::test]
async fn the_openidconnect_crate_signs_in_verifies_and_refreshes() {
    let (dir, server) = serve_fresh("openid-rp");
    let port = server.port;
    let issuer = format!("http://127.0.0.1:{port}");
    let user_id = create_user(&dir, USERNAME, "rp-alice@example.test", PASSWORD);
    let (client_id, client_secret) = create_web_client(&dir, "RP Test", REDIRECT_URI);

    let http_client = move |request: HttpRequest| rp_http(port, request);
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http_client)
            .await
            .unwrap_or_else(|e| panic!("discovery: {}", error_chain(&e)));
    assert_eq!(metadata.issuer().as_str(), issuer);
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(client_secret)),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("offline_access".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        auth_url
            .as_str()
            .starts_with(&format!("{issuer}/authorize?"))
    );

    let callback = sign_in_and_allow(&server, &auth_url, USERNAME, PASSWORD);
    assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
    let params: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(state.secret().as_str())
    );
    // RFC 9207 §2.4: the crate leaves the redirect to the app, which checks `iss`.
    assert_eq!(params.get("iss"), Some(&issuer));

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("code exchange: {}", error_chain(&e)));
    let refresh = tokens
        .refresh_token()
        .expect("offline_access: a refresh token");
    assert!(refresh.secret().starts_with("vrt_"));

    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| panic!("ID token: {}", error_chain(&e)));
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.issuer().as_str(), issuer);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), client_id);
    assert!(claims.auth_time().is_some());
    let expected_at_hash = claims.access_token_hash().expect("at_hash");
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&at_hash, expected_at_hash);

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("UserInfo: {}", error_chain(&e)));
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(
        info.preferred_username().map(|name| name.as_str()),
        Some(USERNAME)
    );
    assert_eq!(
        info.email().map(|email| email.as_str()),
        Some("rp-alice@example.test")
    );

    let refreshed = client
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("refresh: {}", error_chain(&e)));
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert!(rotated.secret().starts_with("vrt_"));
    assert_ne!(rotated.secret(), refresh.secret());
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    // OpenID Connect Core §12.2: the same subject and auth_time; a nonce, if any,
    // is the original one.
    let id_token = refreshed.id_token().expect("a fresh ID token on refresh");
    let original = nonce.clone();
    let again = id_token
        .claims(&verifier, |found: Option<&Nonce>| match found {
            Some(found) if found.secret() != original.secret() => {
                Err("a different nonce".to_owned())
            }
            _ => Ok(()),
        })
        .unwrap_or_else(|e| panic!("refreshed ID token: {}", error_chain(&e)));
    assert_eq!(again.subject().as_str(), user_id);
    assert_eq!(again.auth_time(), claims.auth_time());
    // The refreshed access token works at UserInfo too.
    let info: CoreUserInfoClaims = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("UserInfo after refresh: {}", error_chain(&e)));
    assert_eq!(info.subject().as_str(), user_id);
}

/// The user's side of the flow, as a browser would do it: the authorization URL,
/// the login form, the consent form; returns where the server sends the browser.
fn sign_in_and_allow(server: &Server, auth_url: &Url, username: &str, password: &str) -> Url {
    let mut jar = CookieJar::default();
    let path = &auth_url[openidconnect::url::Position::BeforePath..];
    let login = jar.send(server.port, "GET", path, "");
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("Sign in"), "{}", login.body);
    assert!(jar.has("valet-csrf"), "the login page sets the CSRF cookie");

    let body = form_body(&[
        (
            "interaction",
            &form_field(&login.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&login.body, "csrf").unwrap()),
        ("username", username),
        ("password", password),
    ]);
    let consent = jar.send(server.port, "POST", "/login", &body);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("value=\"allow\""), "{}", consent.body);
    assert!(
        jar.has("valet-session"),
        "signing in sets the session cookie"
    );

    let body = form_body(&[
        (
            "interaction",
            &form_field(&consent.body, "interaction").unwrap(),
        ),
        ("csrf", &form_field(&consent.body, "csrf").unwrap()),
        ("decision", "allow"),
    ]);
    let back = jar.send(server.port, "POST", "/consent", &body);
    assert_eq!(back.status, 303, "{}", back.body);
    Url::parse(back.header("location").expect("a Location")).unwrap()
}

/// The crate's HTTP client: its request sent with the harness's client to the
/// server on `port` (the only host it may talk to), the reply handed back as is.
async fn rp_http(port: u16, request: HttpRequest) -> Result<HttpResponse, std::io::Error> {
    let uri = request.uri();
    assert_eq!(
        (uri.host(), uri.port_u16()),
        (Some("127.0.0.1"), Some(port)),
        "the RP asked for {uri}"
    );
    let method = request.method().as_str().to_owned();
    let path = uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "host" | "content-length" | "connection"))
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect();
    let body = String::from_utf8(request.into_body()).map_err(std::io::Error::other)?;
    let reply = tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        http(port, &method, &path, &headers, &body)
    })
    .await
    .map_err(std::io::Error::other)??;

    let mut response = HttpResponse::new(reply.body.into_bytes());
    *response.status_mut() = StatusCode::from_u16(reply.status).map_err(std::io::Error::other)?;
    for (name, value) in reply.headers {
        response.headers_mut().append(
            HeaderName::try_from(name).map_err(std::io::Error::other)?,
            HeaderValue::try_from(value).map_err(std::io::Error::other)?,
        );
    }
    Ok(response)
}

/// An error with its sources, for failure messages.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
