//! End-to-end tests of the mock provider over HTTP.

mod login;

mod node_server;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{Clock, ManualClock};
use portcullis_core::dangerous::sign_unchecked;
use portcullis_core::keys::KeySet;
use portcullis_core::{Algorithm, TokenKind};
use portcullis_testing::{Fault, MockOptions, MockProvider};
use serde_json::{Value, json};

fn decode_json(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let header = decode_json(it.next().unwrap());
    let claims = decode_json(it.next().unwrap());
    (header, claims)
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

async fn key_set(provider: &MockProvider) -> KeySet {
    let doc = get_json(&provider.jwks_url()).await;
    KeySet::from_jwks(&doc, &Algorithm::ALL).unwrap().0
}

/// Whether `token` verifies with the key its `kid` names in `keys`.
fn verifies(keys: &KeySet, token: &str) -> bool {
    let (header, _) = parts(token);
    let alg: Algorithm = header["alg"].as_str().unwrap().parse().unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    keys.get(header["kid"].as_str().unwrap())
        .is_some_and(|key| key.verify(alg, input.as_bytes(), &signature))
}

fn kids(doc: &Value) -> Vec<String> {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn discovery_document_describes_the_provider() {
    let provider = MockProvider::start().await.unwrap();
    let issuer = provider.issuer();
    assert!(issuer.starts_with("http://127.0.0.1:"));
    assert!(!issuer.ends_with('/'));
    assert_eq!(provider.base_url(), issuer);
    assert_eq!(provider.url("/x"), format!("{issuer}/x"));

    let doc = get_json(&provider.discovery_url()).await;
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["jwks_uri"], provider.jwks_url());
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    assert!(
        doc["userinfo_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&issuer)
    );
    assert!(
        doc["end_session_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&issuer)
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
    );
    assert_eq!(
        provider.request_count("/.well-known/openid-configuration"),
        1
    );
}

#[tokio::test]
async fn jwks_publishes_one_key_per_algorithm_with_cache_control() {
    let provider = MockProvider::start().await.unwrap();
    let response = reqwest::get(provider.jwks_url()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let doc: Value = response.json().await.unwrap();
    let (keys, skipped) = KeySet::from_jwks(&doc, &Algorithm::ALL).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(keys.len(), 3);
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let kid = provider.signing_key(alg).kid().to_owned();
        assert!(keys.get(&kid).unwrap().supports(alg), "{alg}");
    }
    assert_eq!(doc, provider.jwks());

    provider.set_jwks_max_age(Some(5));
    let response = reqwest::get(provider.jwks_url()).await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=5");
    provider.set_jwks_max_age(None);
    let response = reqwest::get(provider.jwks_url()).await.unwrap();
    assert!(response.headers().get("cache-control").is_none());
    assert_eq!(provider.jwks_fetches(), 3);
}

#[tokio::test]
async fn minted_tokens_verify_with_the_published_keys() {
    let provider = MockProvider::start().await.unwrap();
    let keys = key_set(&provider).await;
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let token = provider.token().algorithm(alg).sign();
        assert!(verifies(&keys, &token), "{alg}");
        let (header, _) = parts(&token);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], provider.signing_key(alg).kid());
    }
    // A tampered payload does not verify.
    let token = provider.token().sign();
    let mut segments: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
    segments[1] = &forged;
    assert!(!verifies(&keys, &segments.join(".")));
}

#[tokio::test]
async fn access_tokens_carry_the_default_claims() {
    let provider = MockProvider::start().await.unwrap();
    let builder = provider
        .token()
        .email("alice@example.com")
        .username("alice");
    let expected = builder.claims_json();
    let expected_header = builder.header_json();
    let token = builder.sign();
    let (header, claims) = parts(&token);
    assert_eq!(header, expected_header);
    assert_eq!(claims, expected);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], provider.issuer());
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["aud"], "portcullis-api");
    assert_eq!(claims["aud"], provider.audience());
    assert_eq!(claims["client_id"], provider.client_id());
    assert_eq!(claims["scope"], "openid profile email");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap() + 300
    );
    assert!(claims.get("nonce").is_none());
    let other = parts(&provider.token().sign()).1;
    assert_ne!(claims["jti"], other["jti"]);
    assert!(other.get("email").is_none());
}

#[tokio::test]
async fn id_tokens_carry_oidc_claims() {
    let provider = MockProvider::start().await.unwrap();
    let token = provider
        .token()
        .kind(TokenKind::Id)
        .subject("bob")
        .at_hash_for("some-access-token")
        .sign();
    let (header, claims) = parts(&token);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["aud"], "portcullis-client");
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["auth_time"], claims["iat"]);
    // at_hash: left half of SHA-256 of the access token for RS256.
    assert_eq!(claims["at_hash"], AT_HASH_OF_SOME_ACCESS_TOKEN);
    assert!(claims.get("client_id").is_none());
    assert!(claims.get("scope").is_none());
    assert!(verifies(&key_set(&provider).await, &token));
}

/// base64url of the left half of SHA-256("some-access-token"), computed independently.
const AT_HASH_OF_SOME_ACCESS_TOKEN: &str = "CRLvO23C6lecaPrHhPjC3Q";

#[tokio::test]
async fn builder_overrides_claims_and_header() {
    let provider = MockProvider::start().await.unwrap();
    let builder = provider
        .token()
        .claim("sub", json!("svc"))
        .claim("roles", json!(["admin"]))
        .without_claim("exp")
        .without_claim("jti")
        .audiences(["a", "b"])
        .issuer("https://elsewhere.example")
        .scope("read write")
        .kid("unknown-kid")
        .header("jku", json!("https://evil.example/jwks"));
    let (header, claims) = parts(&builder.sign());
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert!(claims.get("exp").is_none());
    assert!(claims.get("jti").is_none());
    assert_eq!(claims["aud"], json!(["a", "b"]));
    assert_eq!(claims["iss"], "https://elsewhere.example");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(header["kid"], "unknown-kid");
    assert_eq!(header["jku"], "https://evil.example/jwks");

    let single = parts(&provider.token().audience("other").sign()).1;
    assert_eq!(single["aud"], "other");
    // A claim set after being removed comes back.
    let back = parts(
        &provider
            .token()
            .without_claim("nbf")
            .claim("nbf", json!(1))
            .sign(),
    )
    .1;
    assert_eq!(back["nbf"], 1);
}

#[tokio::test]
async fn hand_made_tokens_sign_with_sign_unchecked() {
    let provider = MockProvider::start().await.unwrap();
    let builder = provider.token().algorithm(Algorithm::ES256);
    let mut claims = builder.claims_json();
    claims["exp"] = json!("soon");
    let header = builder.header_json();
    let token = sign_unchecked(
        &provider.signing_key(Algorithm::ES256),
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
    .unwrap();
    assert!(verifies(&key_set(&provider).await, &token));
    assert_eq!(parts(&token).1["exp"], "soon");
}

#[tokio::test]
async fn the_clock_dates_tokens() {
    let clock = ManualClock::new(1_000_000);
    let provider = MockProvider::start_with(MockOptions::default().clock(clock.clone()))
        .await
        .unwrap();
    let claims = parts(&provider.token().sign()).1;
    assert_eq!(claims["iat"], 1_000_000);
    assert_eq!(claims["nbf"], 1_000_000);
    assert_eq!(claims["exp"], 1_000_300);

    clock.advance_secs(60);
    assert_eq!(provider.clock().now_secs(), 1_000_060);
    let claims = parts(&provider.token().expires_in(-10).not_before_in(30).sign()).1;
    assert_eq!(claims["iat"], 1_000_060);
    assert_eq!(claims["exp"], 1_000_050);
    assert_eq!(claims["nbf"], 1_000_090);

    provider.clock().set_secs(2_000_000);
    let claims = parts(&provider.token().issued_at(1_999_000).sign()).1;
    assert_eq!(claims["iat"], 1_999_000);
    assert_eq!(claims["nbf"], 1_999_000);
    assert_eq!(claims["exp"], 2_000_300);

    // By default the clock starts at the system time.
    let default =
        MockProvider::start_with(MockOptions::default().algorithms(vec![Algorithm::EdDSA]))
            .await
            .unwrap();
    let system = portcullis_core::clock::SystemClock.now_secs();
    assert!(default.clock().now_secs().abs_diff(system) < 5);
}

#[tokio::test]
async fn rotation_replaces_the_keys() {
    let provider = MockProvider::start().await.unwrap();
    let old_token = provider.token().sign();
    let before = kids(&get_json(&provider.jwks_url()).await);
    provider.rotate_keys();
    let after = kids(&get_json(&provider.jwks_url()).await);
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|kid| !before.contains(kid)),
        "{before:?} {after:?}"
    );
    assert_eq!(provider.signing_key(Algorithm::RS256).kid(), after[0]);
    let keys = key_set(&provider).await;
    assert!(!verifies(&keys, &old_token));
    assert!(verifies(&keys, &provider.token().sign()));
}

#[tokio::test]
async fn rotation_can_keep_previous_keys() {
    let options = MockOptions::default()
        .algorithms(vec![Algorithm::ES256, Algorithm::EdDSA])
        .keep_previous_keys_on_rotation(true);
    let provider = MockProvider::start_with(options).await.unwrap();
    let old_token = provider.token().algorithm(Algorithm::ES256).sign();
    let before = kids(&provider.jwks());
    provider.rotate_keys();
    let after = kids(&get_json(&provider.jwks_url()).await);
    assert_eq!(after.len(), 4);
    assert_eq!(&after[2..], &before[..]);
    let keys = key_set(&provider).await;
    assert!(verifies(&keys, &old_token));
    assert!(verifies(
        &keys,
        &provider.token().algorithm(Algorithm::ES256).sign()
    ));
}

#[tokio::test]
async fn unconfigured_algorithms_sign_with_unpublished_keys() {
    let provider =
        MockProvider::start_with(MockOptions::default().algorithms(vec![Algorithm::ES256]))
            .await
            .unwrap();
    let doc = get_json(&provider.discovery_url()).await;
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let token = provider.token().sign(); // RS256, not configured
    let keys = key_set(&provider).await;
    assert_eq!(keys.len(), 1);
    assert!(!verifies(&keys, &token));
    assert!(
        provider
            .signing_key(Algorithm::RS256)
            .verifying_key()
            .is_ok()
    );
    assert_eq!(parts(&token).0["alg"], "RS256");
}

#[tokio::test]
async fn jwks_faults() {
    let provider =
        MockProvider::start_with(MockOptions::default().algorithms(vec![Algorithm::EdDSA]))
            .await
            .unwrap();
    let client = reqwest::Client::new();
    let url = provider.jwks_url();

    provider.set_jwks_fault(Some(Fault::Status(503)));
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 503);

    provider.set_jwks_fault(Some(Fault::Malformed));
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    provider.set_jwks_fault(Some(Fault::EmptyKeys));
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"keys": []}));

    provider.set_jwks_fault(Some(Fault::Slow(Duration::from_millis(300))));
    let started = Instant::now();
    let response = client.get(&url).send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.json::<Value>().await.unwrap(), provider.jwks());

    provider.set_jwks_fault(None);
    let started = Instant::now();
    let doc: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(doc["keys"].as_array().unwrap().len(), 1);
    assert_eq!(provider.jwks_fetches(), 5);
}

#[tokio::test]
async fn every_request_is_counted_by_path() {
    let provider =
        MockProvider::start_with(MockOptions::default().algorithms(vec![Algorithm::EdDSA]))
            .await
            .unwrap();
    let client = reqwest::Client::new();
    assert_eq!(provider.request_count("/nope"), 0);
    for _ in 0..2 {
        let response = client.get(provider.url("/nope?x=1")).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }
    let response = client.delete(provider.jwks_url()).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = client.get(provider.url("/mint")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(provider.request_count("/nope"), 2);
    assert_eq!(provider.request_count("/jwks"), 1);
    assert_eq!(provider.jwks_fetches(), 1);
    assert_eq!(provider.request_count("/mint"), 1);
    assert_eq!(provider.request_count("/"), 0);
}

#[tokio::test]
async fn mint_endpoint_issues_tokens() {
    let provider = MockProvider::start().await.unwrap();
    let client = reqwest::Client::new();
    let body = json!({
        "sub": "carol",
        "email": "carol@example.com",
        "claims": {"roles": ["reader"], "tenant": "t1"},
        "expires_in": 60,
        "kind": "id",
        "alg": "ES256",
    });
    let response = client
        .post(provider.url("/mint"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let token = answer["token"].as_str().unwrap();
    let (header, claims) = parts(token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["email"], "carol@example.com");
    assert_eq!(claims["aud"], provider.client_id());
    assert_eq!(claims["roles"], json!(["reader"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap() + 60
    );
    assert!(verifies(&key_set(&provider).await, token));

    // No body: a default access token.
    let answer: Value = client
        .post(provider.url("/mint"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (header, claims) = parts(answer["token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["aud"], provider.audience());

    for bad in [
        r#"{"alg": "none"}"#,
        r#"{"kind": "refresh"}"#,
        r#"{"aud": 3}"#,
        "not json",
    ] {
        let response = client
            .post(provider.url("/mint"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    assert_eq!(provider.request_count("/mint"), 6);
}

#[tokio::test]
async fn options_set_audience_client_and_port() {
    let options = MockOptions::default()
        .audience("orders")
        .client_id("web")
        .algorithms(vec![Algorithm::EdDSA, Algorithm::EdDSA]);
    let provider = MockProvider::start_with(options).await.unwrap();
    assert_eq!(provider.audience(), "orders");
    assert_eq!(provider.client_id(), "web");
    assert_eq!(provider.jwks()["keys"].as_array().unwrap().len(), 1);
    let claims = parts(&provider.token().sign()).1;
    assert_eq!(claims["aud"], "orders");
    assert_eq!(claims["client_id"], "web");

    // A fixed port: take a free one, release it, and ask for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fixed = MockProvider::start_with(
        MockOptions::default()
            .port(port)
            .algorithms(vec![Algorithm::EdDSA]),
    )
    .await
    .unwrap();
    assert_eq!(fixed.issuer(), format!("http://127.0.0.1:{port}"));
    assert!(format!("{fixed:?}").contains(&fixed.issuer()));
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let options = MockOptions::default().algorithms(vec![Algorithm::EdDSA]);
    let provider = MockProvider::start_with(options.clone()).await.unwrap();
    let url = provider.discovery_url();
    get_json(&url).await;
    provider.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(reqwest::get(&url).await.is_err());
    // The handle still mints.
    assert_eq!(provider.token().sign().split('.').count(), 3);

    let provider = MockProvider::start_with(options).await.unwrap();
    let clone = provider.clone();
    let url = provider.discovery_url();
    drop(provider);
    get_json(&url).await;
    drop(clone);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(reqwest::get(&url).await.is_err());
}
