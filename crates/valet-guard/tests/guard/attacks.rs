//! Every attack of issue 4, each refused with its specific error.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use valet_guard::{MAX_ACCESS_TOKEN_LEN, TokenError};
use valet_jose::{b64url, b64url_decode};

use super::support::*;

fn header(issuer: &FakeIssuer) -> Value {
    json!({"alg": "ES256", "typ": "at+jwt", "kid": issuer.state.signer.kid()})
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_valid_token_passes() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let token = guard.verify(&issuer.token()).await.unwrap();
    assert_eq!(token.subject(), "alice");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let mut header = header(&issuer);
    header["alg"] = "none".into();
    let unsigned = format!(
        "{}.{}.",
        b64url(header.to_string()),
        b64url(issuer.claims().to_string())
    );
    assert!(matches!(
        guard.verify(&unsigned).await,
        Err(TokenError::Malformed(_))
    ));
    for alg in ["none", "None", "NONE"] {
        header["alg"] = alg.into();
        let with_junk = format!(
            "{}.{}.AAAA",
            b64url(header.to_string()),
            b64url(issuer.claims().to_string())
        );
        assert_eq!(
            guard.verify(&with_junk).await.unwrap_err(),
            TokenError::UnsupportedAlgorithm,
            "{alg}"
        );
    }
}

/// Key confusion: HS256 "signed" with the issuer's public key (its JWK text, the raw
/// point, the base64url `x`) as the HMAC secret.
#[tokio::test]
async fn hmac_with_the_public_key_as_secret_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let jwk = issuer.state.signer.signing.public_jwk().clone();
    let x = jwk["x"].as_str().unwrap().to_owned();
    let mut secrets = vec![
        serde_json::to_vec(&jwk).unwrap(),
        x.clone().into_bytes(),
        b64url_decode(&x).unwrap(),
    ];
    let mut point = vec![4u8];
    point.extend(b64url_decode(&x).unwrap());
    point.extend(b64url_decode(jwk["y"].as_str().unwrap()).unwrap());
    secrets.push(point);
    for alg in [
        jsonwebtoken::Algorithm::HS256,
        jsonwebtoken::Algorithm::HS384,
        jsonwebtoken::Algorithm::HS512,
    ] {
        for secret in &secrets {
            let mut header = Header::new(alg);
            header.typ = Some("at+jwt".into());
            header.kid = Some(issuer.state.signer.kid().into());
            let token = jsonwebtoken::encode(
                &header,
                &issuer.claims(),
                &EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap();
            assert_eq!(
                guard.verify(&token).await.unwrap_err(),
                TokenError::UnsupportedAlgorithm
            );
        }
    }
}

/// RFC 8725 §3.1 / CVE-2018-0114 style: the attacker ships its own key in the header.
#[tokio::test]
async fn embedded_jwk_header_is_never_trusted() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let attacker = Key::es256();
    let jwk = attacker.signing.public_jwk().clone();
    // The attacker's own kid: unknown to the issuer's JWKS.
    let own = json!({"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid(), "jwk": jwk});
    assert_eq!(
        guard
            .verify(&attacker.sign_raw(&own, &issuer.claims()))
            .await
            .unwrap_err(),
        TokenError::UnknownKey
    );
    // The issuer's kid, the attacker's key and signature.
    let mut borrowed = own.clone();
    borrowed["kid"] = issuer.state.signer.kid().into();
    assert_eq!(
        guard
            .verify(&attacker.sign_raw(&borrowed, &issuer.claims()))
            .await
            .unwrap_err(),
        TokenError::InvalidSignature
    );
    // No kid at all, only the embedded key.
    let mut bare = own;
    bare.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        guard
            .verify(&attacker.sign_raw(&bare, &issuer.claims()))
            .await
            .unwrap_err(),
        TokenError::MissingKeyId
    );
}

/// `jku`, `x5u` (and `x5c`) point at or carry the attacker's keys; the guard never
/// fetches them: the attacker's server sees no request.
#[tokio::test]
async fn jku_and_x5u_are_never_fetched() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let key = Key::es256();
    let attacker = Attacker::start(json!({"keys": [key.signing.public_jwk()]})).await;
    let kids = [key.kid().to_owned(), issuer.state.signer.kid().to_owned()];
    for (kid, expected) in kids
        .iter()
        .zip([TokenError::UnknownKey, TokenError::InvalidSignature])
    {
        for extra in [
            json!({"jku": format!("{}/jwks.json", attacker.url)}),
            json!({"x5u": format!("{}/cert.pem", attacker.url)}),
            json!({"x5c": ["MIIBszCCAVmgAwIBAgIUQ"]}),
            json!({"jku": format!("{}/jwks.json", attacker.url), "x5u": format!("{}/c", attacker.url)}),
        ] {
            let mut header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
            header
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let token = key.sign_raw(&header, &issuer.claims());
            assert_eq!(
                guard.verify(&token).await.unwrap_err(),
                expected,
                "{header}"
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(attacker.requests(), 0);
}

/// Unknown `kid`s (100 of them, all at once and then one by one) cause exactly one JWKS
/// refetch within the interval.
#[tokio::test]
async fn unknown_kids_refetch_the_jwks_once_per_interval() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    assert_eq!(issuer.jwks_fetches(), 1);
    let forged: Vec<String> = (0..100)
        .map(|i| {
            issuer
                .state
                .signer
                .renamed(&format!("rotated-{i}"))
                .sign_jwt("at+jwt", &issuer.claims())
                .unwrap()
        })
        .collect();
    let results = futures_util::future::join_all(forged.iter().map(|t| guard.verify(t))).await;
    for result in results {
        assert_eq!(result.unwrap_err(), TokenError::UnknownKey);
    }
    for token in &forged {
        assert_eq!(
            guard.verify(token).await.unwrap_err(),
            TokenError::UnknownKey
        );
    }
    assert_eq!(issuer.jwks_fetches(), 2);
}

/// A key published after start-up is found by that one refetch.
#[tokio::test]
async fn a_newly_published_kid_is_picked_up_by_the_refetch() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let next = Key::es256();
    issuer
        .state
        .published
        .lock()
        .unwrap()
        .push(next.signing.public_jwk().clone());
    let token = next.signing.sign_jwt("at+jwt", &issuer.claims()).unwrap();
    assert_eq!(guard.verify(&token).await.unwrap().subject(), "alice");
    assert_eq!(issuer.jwks_fetches(), 2);
}

/// Path traversal, SQL, control characters, huge and non-string `kid`s are only ever
/// looked up in the in-memory key map.
#[tokio::test]
async fn kid_tricks_are_just_unknown_kids() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .jwks_min_refetch_interval(Duration::from_secs(3600)),
        )
        .await;
    let long = "k".repeat(4000);
    for kid in [
        "../../../../etc/passwd",
        "/dev/null",
        "' OR '1'='1' --",
        "x'; DROP TABLE keys; --",
        "\u{0}",
        "kid\r\nX-Injected: 1",
        "%2e%2e%2fjwks",
        "",
        long.as_str(),
    ] {
        let mut header = header(&issuer);
        header["kid"] = kid.into();
        let token = issuer.state.signer.sign_raw(&header, &issuer.claims());
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::UnknownKey,
            "{kid:?}"
        );
    }
    for kid in [json!(1), json!(null), json!(["a"]), json!({"a": 1})] {
        let mut header = header(&issuer);
        header["kid"] = kid.clone();
        let token = issuer.state.signer.sign_raw(&header, &issuer.claims());
        assert!(
            matches!(
                guard.verify(&token).await.unwrap_err(),
                TokenError::Malformed(_) | TokenError::MissingKeyId
            ),
            "{kid}"
        );
    }
    assert_eq!(issuer.jwks_fetches(), 2);
}

/// RFC 9068 §4: an ID token (typ JWT), or a token without typ, is not an access token.
#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let mut id_claims = issuer.claims();
    id_claims["aud"] = AUDIENCE.into();
    id_claims["nonce"] = "n".into();
    for typ in ["JWT", "jwt", "application/jwt", "at+jwt2", "id_token+jwt"] {
        let token = issuer
            .state
            .signer
            .signing
            .sign_jwt(typ, &id_claims)
            .unwrap();
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::WrongType,
            "{typ}"
        );
    }
    let mut untyped = header(&issuer);
    untyped.as_object_mut().unwrap().remove("typ");
    let token = issuer.state.signer.sign_raw(&untyped, &id_claims);
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::WrongType
    );
    // RFC 7515 §4.1.9: the media type form is the same type.
    let token = issuer
        .state
        .signer
        .signing
        .sign_jwt("application/at+jwt", &id_claims)
        .unwrap();
    assert!(guard.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let url = issuer.url.clone();
    for iss in [
        format!("{url}/"),
        url.replace("127.0.0.1", "localhost"),
        "https://evil.example".to_owned(),
        String::new(),
    ] {
        let token = issuer.token_with(|c| c["iss"] = iss.clone().into());
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::InvalidIssuer,
            "{iss}"
        );
    }
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    for aud in [
        json!("https://billing.example"),
        json!(["https://billing.example", "https://orders.example/"]),
        json!([]),
        json!(""),
    ] {
        let token = issuer.token_with(|c| c["aud"] = aud.clone());
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::InvalidAudience,
            "{aud}"
        );
    }
    let token = issuer.token_with(|c| c["aud"] = json!(["https://billing.example", AUDIENCE]));
    assert!(guard.verify(&token).await.is_ok());
}

/// Expired beyond the leeway is refused; within the leeway accepted. The clock is moved,
/// not slept.
#[tokio::test]
async fn expiry_honours_the_leeway() {
    let issuer = FakeIssuer::start().await;
    let clock = std::sync::Arc::new(valet_guard::ManualClock::new(now()));
    let guard = issuer
        .guard_with(issuer.config().clock(clock.clone()))
        .await;
    let exp = now() + 600;
    let token = issuer.token_with(|c| c["exp"] = exp.into());
    clock.set(exp + 29);
    assert!(guard.verify(&token).await.is_ok());
    clock.set(exp + 30);
    assert_eq!(guard.verify(&token).await.unwrap_err(), TokenError::Expired);
    clock.set(exp + 100_000);
    assert_eq!(guard.verify(&token).await.unwrap_err(), TokenError::Expired);
    let token = issuer.token_with(|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap());
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::MissingClaim("exp")
    );
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    // One instant for the clock and the claims: reading the wall clock twice could
    // cross a second boundary and shift `nbf` past the leeway.
    let start = now();
    let issuer = FakeIssuer::start().await;
    let clock = std::sync::Arc::new(valet_guard::ManualClock::new(start));
    let guard = issuer
        .guard_with(issuer.config().clock(clock.clone()))
        .await;
    let token = issuer.token_with(|c| {
        c["nbf"] = (start + 3600).into();
        c["exp"] = (start + 7200).into();
    });
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::NotYetValid
    );
    clock.set(start + 3600 - 31);
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::NotYetValid
    );
    clock.set(start + 3600 - 30);
    assert!(guard.verify(&token).await.is_ok());
    clock.set(start);
    let token = issuer.token_with(|c| c["iat"] = (start + 7200).into());
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::IssuedInFuture
    );
}

/// CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify; nor r = s = n.
#[tokio::test]
async fn the_psychic_ecdsa_signature_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let parts = segments(&issuer.token());
    // The P-256 group order n.
    let n = b64url_decode("_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE").unwrap();
    let mut n_n = n.clone();
    n_n.extend(&n);
    for signature in [vec![0u8; 64], n_n, vec![0u8; 0x48], vec![0u8; 1]] {
        let token = format!("{}.{}.{}", parts[0], parts[1], b64url(&signature));
        let error = guard.verify(&token).await.unwrap_err();
        assert!(
            matches!(
                error,
                TokenError::InvalidSignature | TokenError::Malformed(_)
            ),
            "{error:?}"
        );
    }
    let zero = format!("{}.{}.{}", parts[0], parts[1], b64url([0u8; 64]));
    assert_eq!(
        guard.verify(&zero).await.unwrap_err(),
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn an_oversized_token_is_refused_unparsed() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let huge = "a".repeat(MAX_ACCESS_TOKEN_LEN + 1);
    assert_eq!(guard.verify(&huge).await.unwrap_err(), TokenError::TooLarge);
    let padded = |len: usize| issuer.token_with(|c| c["pad"] = "x".repeat(len).into());
    let mut pad = 0;
    for step in [256, 16, 1] {
        while padded(pad + step).len() <= MAX_ACCESS_TOKEN_LEN {
            pad += step;
        }
    }
    assert!(guard.verify(&padded(pad)).await.is_ok());
    assert_eq!(
        guard.verify(&padded(pad + 1)).await.unwrap_err(),
        TokenError::TooLarge
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let token = issuer.token();
    let p = segments(&token);
    for bad in [
        String::new(),
        format!("{}.{}", p[0], p[1]),
        format!("{}.{}.{}.{}", p[0], p[1], p[2], p[2]),
        format!("{}.{}.{}.{}.{}", p[0], p[1], p[2], p[2], p[2]),
        format!("{}!.{}.{}", p[0], p[1], p[2]),
        format!("{}.{}.{}", b64url("{not json"), p[1], p[2]),
        format!("{}.{}.{}", b64url("[]"), p[1], p[2]),
        format!("{}.{}.%%%", p[0], p[1]),
        format!("{} .{}.{}", p[0], p[1], p[2]),
        "..".to_owned(),
    ] {
        assert!(
            matches!(
                guard.verify(&bad).await.unwrap_err(),
                TokenError::Malformed(_)
            ),
            "{bad}"
        );
    }
    // Validly signed payloads that are not a claims object, or are not JSON at all.
    let header = header(&issuer);
    for payload in [json!("text"), json!([1]), json!(null), json!(12)] {
        let token = issuer.state.signer.sign_raw(&header, &payload);
        assert!(matches!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::Malformed(_)
        ));
    }
    let input = format!(
        "{}.{}",
        b64url(header.to_string()),
        b64url("{\"iss\": oops")
    );
    let raw = issuer.state.signer.sign_raw(&header, &json!({}));
    let signature = raw.rsplit('.').next().unwrap();
    assert!(guard.verify(&format!("{input}.{signature}")).await.is_err());
}

/// Numbers serde cannot hold as f64 make the payload malformed; numbers it holds
/// saturate; an index beyond u64 is an invalid status claim. Nothing panics.
#[tokio::test]
async fn huge_numbers_never_panic() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    let header = header(&issuer);
    let claims = issuer.claims();
    let exp = format!("\"exp\":{}", claims["exp"]);
    let text = claims.to_string();
    let sign = |payload: String| issuer.state.signer.sign_text(&header, &payload);

    let out_of_range = sign(text.replacen(&exp, "\"exp\":1e999", 1));
    assert!(matches!(
        guard.verify(&out_of_range).await.unwrap_err(),
        TokenError::Malformed(_)
    ));
    // The issuer signed it: a far future exp is its choice, and it does not overflow.
    let far = sign(text.replacen(&exp, "\"exp\":99999999999999999999999999", 1));
    assert!(guard.verify(&far).await.is_ok());
    let past = sign(text.replacen(&exp, "\"exp\":-99999999999999999999999", 1));
    assert_eq!(guard.verify(&past).await.unwrap_err(), TokenError::Expired);
    let nbf = sign(text.replacen('{', "{\"nbf\":1e308,", 1));
    assert_eq!(
        guard.verify(&nbf).await.unwrap_err(),
        TokenError::NotYetValid
    );
    let idx = issuer.token_with(|c| c["status"]["status_list"]["idx"] = json!(1e30));
    assert_eq!(
        guard.verify(&idx).await.unwrap_err(),
        TokenError::InvalidClaim("status")
    );
    let idx = issuer.token_at("0", u64::MAX);
    assert_eq!(
        guard.verify(&idx).await.unwrap_err(),
        TokenError::StatusIndexOutOfRange
    );
}

/// RFC 7515 §4.1.11: a `crit` member naming an extension the guard does not understand.
#[tokio::test]
async fn unknown_crit_is_refused() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer.guard().await;
    for crit in [
        json!(["exp"]),
        json!(["urn:example:magic"]),
        json!([]),
        json!(["b64"]),
    ] {
        let mut header = header(&issuer);
        header["crit"] = crit.clone();
        header["exp"] = 1.into();
        header["urn:example:magic"] = true.into();
        let token = issuer.state.signer.sign_raw(&header, &issuer.claims());
        assert_eq!(
            guard.verify(&token).await.unwrap_err(),
            TokenError::UnsupportedHeader,
            "{crit}"
        );
    }
    let mut header = header(&issuer);
    header["b64"] = false.into();
    header["crit"] = json!(["b64"]);
    let token = issuer.state.signer.sign_raw(&header, &issuer.claims());
    assert_eq!(
        guard.verify(&token).await.unwrap_err(),
        TokenError::UnsupportedHeader
    );
}

/// Every prefix of a token, and every single byte replaced, is refused without a panic.
#[tokio::test]
async fn mangled_tokens_never_panic() {
    let issuer = FakeIssuer::start().await;
    let guard = issuer
        .guard_with(
            issuer
                .config()
                .jwks_min_refetch_interval(Duration::from_secs(3600)),
        )
        .await;
    let token = issuer.token();
    for cut in 0..token.len() {
        assert!(guard.verify(&token[..cut]).await.is_err());
        for replacement in [b'.', b'A', b'_', b'='] {
            let mut bytes = token.clone().into_bytes();
            if bytes[cut] == replacement {
                continue;
            }
            bytes[cut] = replacement;
            let mangled = String::from_utf8(bytes).unwrap();
            assert!(guard.verify(&mangled).await.is_err(), "{mangled}");
        }
    }
    for junk in ["...", ".", "é.é.é", "\0.\0.\0", "Bearer x.y.z"] {
        assert!(guard.verify(junk).await.is_err());
    }
}
