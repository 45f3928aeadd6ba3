//! Hostile and malformed tokens: each is refused with 401 and a precise reason.

use portcullis_core::dangerous::sign_unchecked;
use portcullis_core::mint::SigningKey;
use portcullis_core::{Algorithm, TokenRejection};
use serde_json::{Value, json};

use crate::support::*;

/// Signs `header` and `payload` bytes with the provider's current key for `alg`.
fn craft(h: &Harness, alg: Algorithm, header: &Value, payload: &[u8]) -> String {
    sign_unchecked(
        &h.provider.signing_key(alg),
        header.to_string().as_bytes(),
        payload,
    )
    .unwrap()
}

fn valid_claims(h: &Harness) -> Value {
    h.provider.token().email("eve@example.com").claims_json()
}

fn rs_header(h: &Harness) -> Value {
    json!({"alg": "RS256", "typ": "at+jwt", "kid": h.provider.signing_key(Algorithm::RS256).kid()})
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn with_claim(h: &Harness, name: &str, value: Value) -> String {
    let mut claims = valid_claims(h);
    claims[name] = value;
    craft(
        h,
        Algorithm::RS256,
        &rs_header(h),
        claims.to_string().as_bytes(),
    )
}

fn without_claim(h: &Harness, name: &str) -> String {
    let mut claims = valid_claims(h);
    claims.as_object_mut().unwrap().remove(name);
    craft(
        h,
        Algorithm::RS256,
        &rs_header(h),
        claims.to_string().as_bytes(),
    )
}

#[tokio::test]
async fn alg_none_in_every_spelling() {
    let h = harness().await;
    let payload = b64(valid_claims(&h).to_string().as_bytes());
    for alg in ["none", "None", "nOnE", "NONE"] {
        let header = b64(json!({"alg": alg, "typ": "at+jwt"}).to_string().as_bytes());
        let unsigned = format!("{header}.{payload}.");
        bearer(&h.app, "/me", &unsigned)
            .await
            .assert_refused(TokenRejection::UnsupportedAlgorithm);
        let real = h.provider.token().sign();
        let sig = real.rsplit('.').next().unwrap();
        let signed = format!("{header}.{payload}.{sig}");
        bearer(&h.app, "/me", &signed)
            .await
            .assert_refused(TokenRejection::UnsupportedAlgorithm);
    }
}

async fn hs256_with_key_bytes(secret: &[u8]) {
    let h = harness().await;
    let kid = h.provider.signing_key(Algorithm::RS256).kid().to_owned();
    let key = SigningKey::from_secret(Algorithm::HS256, kid.clone(), secret).unwrap();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let token = sign_unchecked(
        &key,
        header.to_string().as_bytes(),
        valid_claims(&h).to_string().as_bytes(),
    )
    .unwrap();
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::DisallowedAlgorithm);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_pem() {
    let h = harness().await;
    let pem = h
        .provider
        .signing_key(Algorithm::RS256)
        .public_pem()
        .unwrap();
    drop(h);
    hs256_with_key_bytes(pem.as_bytes()).await;
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_jwk() {
    let h = harness().await;
    let jwk = h
        .provider
        .signing_key(Algorithm::RS256)
        .public_jwk()
        .unwrap()
        .to_string();
    drop(h);
    hs256_with_key_bytes(jwk.as_bytes()).await;
}

#[tokio::test]
async fn expired() {
    let h = harness().await;
    let token = h.provider.token().expires_in(-61).sign();
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::Expired);
    // Within the 60 s leeway it still passes.
    let token = h
        .provider
        .token()
        .email("l@example.com")
        .expires_in(-30)
        .sign();
    assert_eq!(bearer(&h.app, "/me", &token).await.body, "l@example.com");
}

#[tokio::test]
async fn not_before_in_the_future() {
    let h = harness().await;
    let token = h.provider.token().not_before_in(120).sign();
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::NotYetValid);
}

#[tokio::test]
async fn exp_and_nbf_as_string_null_or_bool() {
    let h = harness().await;
    let far = ({
        use portcullis_core::clock::Clock;
        h.provider.clock().now_secs()
    } + 600)
        .to_string();
    for (name, value) in [
        ("exp", json!(far)),
        ("exp", json!(true)),
        ("nbf", json!("0")),
        ("nbf", Value::Null),
        ("nbf", json!(false)),
    ] {
        bearer(&h.app, "/me", &with_claim(&h, name, value.clone()))
            .await
            .assert_refused(TokenRejection::InvalidClaim);
    }
    // exp null is the same as no exp at all.
    bearer(&h.app, "/me", &with_claim(&h, "exp", Value::Null))
        .await
        .assert_refused(TokenRejection::MissingClaim);
}

#[tokio::test]
async fn missing_exp() {
    let h = harness().await;
    bearer(&h.app, "/me", &without_claim(&h, "exp"))
        .await
        .assert_refused(TokenRejection::MissingClaim);
}

#[tokio::test]
async fn wrong_issuer_trailing_slash_and_case() {
    let h = harness().await;
    let iss = h.provider.issuer();
    for bad in [
        "https://evil.example.com".to_owned(),
        format!("{iss}/"),
        iss.to_uppercase(),
        iss.replace("http://", "HTTP://"),
    ] {
        bearer(&h.app, "/me", &with_claim(&h, "iss", json!(bad)))
            .await
            .assert_refused(TokenRejection::UnknownIssuer);
    }
    bearer(&h.app, "/me", &with_claim(&h, "iss", json!(42)))
        .await
        .assert_refused(TokenRejection::InvalidClaim);
}

#[tokio::test]
async fn wrong_audience_and_audience_of_the_wrong_type() {
    let h = harness().await;
    bearer(
        &h.app,
        "/me",
        &h.provider.token().audience("someone-else").sign(),
    )
    .await
    .assert_refused(TokenRejection::WrongAudience);
    bearer(&h.app, "/me", &with_claim(&h, "aud", json!(12)))
        .await
        .assert_refused(TokenRejection::InvalidClaim);
    bearer(&h.app, "/me", &without_claim(&h, "aud"))
        .await
        .assert_refused(TokenRejection::WrongAudience);
}

#[tokio::test]
async fn audience_array_containing_ours_is_accepted() {
    let h = harness().await;
    let ours = h.provider.audience().to_owned();
    let token = h
        .provider
        .token()
        .email("m@example.com")
        .audiences(vec!["other".to_owned(), ours])
        .sign();
    assert_eq!(bearer(&h.app, "/me", &token).await.body, "m@example.com");
}

#[tokio::test]
async fn key_location_headers_are_refused_and_never_fetched() {
    let h = harness().await;
    let attacker = h.provider.url("/attacker/jwks");
    let cert = h.provider.url("/attacker/cert.pem");
    let jwk = h
        .provider
        .signing_key(Algorithm::RS256)
        .public_jwk()
        .unwrap();
    for (name, value) in [
        ("jku", json!(attacker)),
        ("x5u", json!(cert)),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
        ("jwk", jwk),
    ] {
        let token = h.provider.token().header(name, value).sign();
        bearer(&h.app, "/me", &token)
            .await
            .assert_refused(TokenRejection::ForbiddenHeader);
    }
    assert_eq!(h.provider.request_count("/attacker/jwks"), 0);
    assert_eq!(h.provider.request_count("/attacker/cert.pem"), 0);
}

#[tokio::test]
async fn hostile_kid_values_cause_no_refetch_storm() {
    let h = harness().await;
    // Load the keys once.
    assert_eq!(
        bearer(
            &h.app,
            "/me",
            &h.provider.token().email("k@example.com").sign()
        )
        .await
        .body,
        "k@example.com"
    );
    let fetches = h.provider.jwks_fetches();
    let long = "k".repeat(10 * 1024);
    for kid in [
        "../../dev/null",
        "x' UNION SELECT '1';--",
        "",
        long.as_str(),
    ] {
        for _ in 0..20 {
            let token = h.provider.token().kid(kid).sign();
            bearer(&h.app, "/me", &token)
                .await
                .assert_refused(TokenRejection::UnknownKey);
        }
    }
    assert!(
        h.provider.jwks_fetches() - fetches <= 1,
        "{} refetches",
        h.provider.jwks_fetches() - fetches
    );
}

#[tokio::test]
async fn unknown_crit_header() {
    let h = harness().await;
    let token = h
        .provider
        .token()
        .header("crit", json!(["exp-v2"]))
        .header("exp-v2", json!(1))
        .sign();
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::ForbiddenHeader);
}

#[tokio::test]
async fn signature_of_another_key() {
    let h = harness().await;
    let kid = h.provider.signing_key(Algorithm::RS256).kid().to_owned();
    let other = SigningKey::generate(Algorithm::RS256, kid).unwrap();
    let token = sign_unchecked(
        &other,
        rs_header(&h).to_string().as_bytes(),
        valid_claims(&h).to_string().as_bytes(),
    )
    .unwrap();
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::BadSignature);
}

#[tokio::test]
async fn stripped_and_truncated_signatures() {
    let h = harness().await;
    let token = h.provider.token().sign();
    let (input, sig) = token.rsplit_once('.').unwrap();
    bearer(&h.app, "/me", &format!("{input}."))
        .await
        .assert_refused(TokenRejection::BadSignature);
    bearer(&h.app, "/me", input)
        .await
        .assert_refused(TokenRejection::Malformed);
    // A whole number of base64 quanta, so the cut itself is not a decoding error.
    let truncated = &sig[..sig.len() / 4 * 4 - 4];
    bearer(&h.app, "/me", &format!("{input}.{truncated}"))
        .await
        .assert_refused(TokenRejection::BadSignature);
}

#[tokio::test]
async fn non_canonical_base64() {
    let h = harness().await;
    let token = h.provider.token().sign();
    let parts: Vec<&str> = token.split('.').collect();
    let std_alphabet = token.replace('-', "+").replace('_', "/");
    let mut variants = vec![
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &format!("{}\t{}", &parts[2][..5], &parts[2][5..])
        ),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            &format!("{} {}", &parts[2][..5], &parts[2][5..])
        ),
    ];
    if std_alphabet != token {
        variants.push(std_alphabet);
    }
    variants.push(format!(
        "{}.{}.{}+/",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 2]
    ));
    for v in variants {
        let r = get_with(&h.app, "/me", &[("authorization", &format!("Bearer {v}"))]).await;
        // Whitespace inside the credentials is a malformed request; everything else a malformed token.
        if v.contains(char::is_whitespace) {
            assert_eq!(r.status, http::StatusCode::BAD_REQUEST, "{v}");
        } else {
            r.assert_refused(TokenRejection::Malformed);
        }
    }
}

#[tokio::test]
async fn duplicate_claim_names() {
    let h = harness().await;
    let claims = valid_claims(&h).to_string();
    let dup = format!("{},\"sub\":\"admin\"}}", &claims[..claims.len() - 1]);
    let token = craft(&h, Algorithm::RS256, &rs_header(&h), dup.as_bytes());
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::DuplicateMember);
}

#[tokio::test]
async fn header_or_payload_not_a_json_object() {
    let h = harness().await;
    let claims = valid_claims(&h).to_string();
    let key = h.provider.signing_key(Algorithm::RS256);
    for header in [&b"[\"RS256\"]"[..], b"\"RS256\"", b"not json"] {
        let token = sign_unchecked(&key, header, claims.as_bytes()).unwrap();
        bearer(&h.app, "/me", &token)
            .await
            .assert_refused(TokenRejection::Malformed);
    }
    for payload in [&b"[1,2]"[..], b"42", b"{\"a\":1} trailing", b""] {
        let token = craft(&h, Algorithm::RS256, &rs_header(&h), payload);
        bearer(&h.app, "/me", &token)
            .await
            .assert_refused(TokenRejection::Malformed);
    }
}

#[tokio::test]
async fn one_mebibyte_token_is_refused_before_decoding() {
    let h = harness().await;
    let huge = "a".repeat(1024 * 1024);
    bearer(&h.app, "/me", &huge)
        .await
        .assert_refused(TokenRejection::TooLarge);
    assert_eq!(h.provider.jwks_fetches(), 0, "nothing was fetched for it");
}

#[tokio::test]
async fn es256_all_zero_signature() {
    let h = harness().await;
    let token = h.provider.token().algorithm(Algorithm::ES256).sign();
    let (input, _) = token.rsplit_once('.').unwrap();
    let zero = b64(&[0u8; 64]);
    bearer(&h.app, "/me", &format!("{input}.{zero}"))
        .await
        .assert_refused(TokenRejection::BadSignature);
}

#[tokio::test]
async fn algorithm_not_configured_for_the_issuer() {
    let h = harness().await;
    let token = h.provider.token().algorithm(Algorithm::PS256).sign();
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::DisallowedAlgorithm);
}
