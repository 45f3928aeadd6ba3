//! The resource-server behaviours: callers, optional callers, scopes, forwarded tokens.

use std::sync::Arc;

use http::StatusCode;
use portcullis_core::config::{CognitoConfig, IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, CredentialsConfig, TokenKind, TokenRejection, TokenVerifier};
use portcullis_testing::MockProvider;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn valid_token_is_accepted_with_the_callers_email() {
    let h = harness().await;
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let token = h
            .provider
            .token()
            .email("alice@example.com")
            .algorithm(alg)
            .sign();
        let r = bearer(&h.app, "/me", &token).await;
        assert_eq!(r.status, StatusCode::OK, "{alg}: {r:?}");
        assert_eq!(r.body, "alice@example.com");
    }
}

#[tokio::test]
async fn absent_credentials_are_a_401_challenge() {
    let h = harness().await;
    let r = get_with(&h.app, "/me", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www_authenticate(), r#"Bearer realm="portcullis""#);
    // Another scheme is no bearer credential either.
    let r = get_with(&h.app, "/me", &[("authorization", "Basic YTpi")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www_authenticate(), r#"Bearer realm="portcullis""#);
}

#[tokio::test]
async fn scheme_is_case_insensitive_and_empty_bearer_is_a_bad_request() {
    let h = harness().await;
    let token = h.provider.token().email("a@example.com").sign();
    let r = get_with(
        &h.app,
        "/me",
        &[("authorization", &format!("bEaReR {token}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get_with(&h.app, "/me", &[("authorization", "Bearer   ")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.www_authenticate().contains(r#"error="invalid_request""#),
        "{r:?}"
    );
}

#[tokio::test]
async fn optional_caller_sees_guests_but_invalid_tokens_are_refused() {
    let h = harness().await;
    let r = get_with(&h.app, "/optional", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello guest"));
    let token = h.provider.token().subject("bob").sign();
    let r = bearer(&h.app, "/optional", &token).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello bob"));
    let r = bearer(&h.app, "/optional", "not.a.token").await;
    r.assert_refused(TokenRejection::Malformed);
}

#[tokio::test]
async fn refuse_missing_refuses_anonymous_requests_in_the_layer() {
    let provider = MockProvider::start().await.unwrap();
    let cfg = VerifierConfig::new([("mock".to_owned(), issuer_config(&provider))]);
    let verifier = verifier_on_clock_of(cfg, &provider);
    let app = app(
        verifier,
        CredentialsConfig::default()
            .with_realm("api")
            .refuse_missing(),
    );
    let r = get_with(&app, "/optional", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www_authenticate(), r#"Bearer realm="api""#);
}

#[tokio::test]
async fn scope_requirement_is_403_insufficient_scope() {
    let h = harness().await;
    let r = get_with(&h.app, "/scoped", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let without = h.provider.token().scope("openid write").sign();
    let r = bearer(&h.app, "/scoped", &without).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.www_authenticate(),
        r#"Bearer realm="portcullis", error="insufficient_scope", error_description="the request requires `read`", scope="read""#
    );
    let with = h
        .provider
        .token()
        .subject("carol")
        .scope("openid read")
        .sign();
    let r = bearer(&h.app, "/scoped", &with).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "read by carol")
    );
    let scp = h
        .provider
        .token()
        .subject("dave")
        .without_claim("scope")
        .claim("scp", json!(["read"]))
        .sign();
    assert_eq!(bearer(&h.app, "/scoped", &scp).await.status, StatusCode::OK);
}

#[tokio::test]
async fn id_token_is_not_an_access_token() {
    let h = harness().await;
    let id = h
        .provider
        .token()
        .kind(TokenKind::Id)
        .audience(h.provider.audience())
        .sign();
    bearer(&h.app, "/me", &id)
        .await
        .assert_refused(TokenRejection::WrongTokenType);
}

#[tokio::test]
async fn proxy_forwarded_tokens_are_verified() {
    let provider = MockProvider::start().await.unwrap();
    let cfg = VerifierConfig::new([("mock".to_owned(), issuer_config(&provider))]);
    let verifier = verifier_on_clock_of(cfg, &provider);
    let creds = CredentialsConfig::default()
        .with_id_token_header("x-id-token")
        .with_refresh_token_header("x-refresh-token");
    let app = app(verifier, creds);
    let access = provider.token().subject("erin").sign();
    let id = provider.token().subject("erin").kind(TokenKind::Id).sign();
    let auth = format!("Bearer {access}");
    let r = get_with(
        &app,
        "/forwarded",
        &[
            ("authorization", &auth),
            ("x-id-token", &id),
            ("x-refresh-token", "opaque-refresh"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "id_token=true refresh_token=14")
    );
    // An ID token of another subject is refused.
    let other = provider
        .token()
        .subject("mallory")
        .kind(TokenKind::Id)
        .sign();
    let r = get_with(
        &app,
        "/forwarded",
        &[("authorization", &auth), ("x-id-token", &other)],
    )
    .await;
    r.assert_refused(TokenRejection::InvalidClaim);
    // An access token in the ID-token header is refused.
    let r = get_with(
        &app,
        "/forwarded",
        &[("authorization", &auth), ("x-id-token", &access)],
    )
    .await;
    r.assert_refused(TokenRejection::WrongTokenType);
    // Without an access token there is no caller, whatever else is forwarded.
    let r = get_with(&app, "/optional", &[("x-id-token", &id)]).await;
    assert_eq!(r.body, "hello guest");
}

#[tokio::test]
async fn bare_token_header_as_proxies_send_it() {
    let provider = MockProvider::start().await.unwrap();
    let cfg = VerifierConfig::new([("mock".to_owned(), issuer_config(&provider))]);
    let verifier = verifier_on_clock_of(cfg, &provider);
    let app = app(
        verifier,
        CredentialsConfig::default().with_token_header("X-Access-Token"),
    );
    let token = provider.token().email("f@example.com").sign();
    let r = get_with(&app, "/me", &[("x-access-token", &token)]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "f@example.com")
    );
}

#[tokio::test]
async fn several_issuers_and_unknown_issuer_without_network() {
    let a = MockProvider::start().await.unwrap();
    let b = MockProvider::start().await.unwrap();
    let stranger = MockProvider::start().await.unwrap();
    let cfg = VerifierConfig::new([
        ("primary".to_owned(), issuer_config(&a)),
        (
            "secondary".to_owned(),
            issuer_config(&b).with_jwks_url(b.jwks_url()),
        ),
    ]);
    let verifier = verifier_on_clock_of(cfg, &a);
    let app = app(verifier, CredentialsConfig::default());
    assert_eq!(
        bearer(&app, "/me", &a.token().email("a@x.test").sign())
            .await
            .body,
        "a@x.test"
    );
    assert_eq!(
        bearer(&app, "/me", &b.token().email("b@x.test").sign())
            .await
            .body,
        "b@x.test"
    );
    bearer(&app, "/me", &stranger.token().sign())
        .await
        .assert_refused(TokenRejection::UnknownIssuer);
    assert_eq!(
        stranger.request_count("/.well-known/openid-configuration"),
        0
    );
    assert_eq!(stranger.jwks_fetches(), 0);
    assert_eq!(
        b.request_count("/.well-known/openid-configuration"),
        0,
        "secondary uses its JWKS URL only"
    );
}

#[tokio::test]
async fn user_id_claim_and_required_claims() {
    let h = harness_with(|_, cfg| {
        let i = cfg.issuers.get_mut("mock").unwrap();
        i.user_id_claim = "email".to_owned();
        i.required_claims = vec!["tenant".to_owned()];
    })
    .await;
    let ok = h
        .provider
        .token()
        .subject("s")
        .email("g@example.com")
        .claim("tenant", json!("t1"))
        .sign();
    assert_eq!(
        bearer(&h.app, "/optional", &ok).await.body,
        "hello g@example.com"
    );
    let no_tenant = h.provider.token().email("g@example.com").sign();
    bearer(&h.app, "/optional", &no_tenant)
        .await
        .assert_refused(TokenRejection::MissingClaim);
    let no_email = h.provider.token().claim("tenant", json!("t1")).sign();
    bearer(&h.app, "/optional", &no_email)
        .await
        .assert_refused(TokenRejection::MissingClaim);
}

#[tokio::test]
async fn cognito_profile_checks_token_use_and_client_id() {
    let provider = MockProvider::start().await.unwrap();
    let mut issuer = IssuerConfig::cognito(CognitoConfig::new(
        "eu-west-1",
        "eu-west-1_pool",
        "app-client",
    ));
    // A Cognito emulator: its own issuer string, keys served elsewhere.
    issuer.issuer = Some(provider.issuer());
    issuer.jwks_url = Some(provider.jwks_url());
    let cfg = VerifierConfig::new([("cognito".to_owned(), issuer)]);
    let verifier = verifier_on_clock_of(cfg, &provider);
    let app = app(verifier, CredentialsConfig::default());
    let cognito_access = |client: &str| {
        provider
            .token()
            .subject("u-1")
            .without_claim("aud")
            .claim("token_use", json!("access"))
            .claim("client_id", json!(client))
            .claim("username", json!("frank"))
            .sign()
    };
    let r = bearer(&app, "/optional", &cognito_access("app-client")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello u-1"));
    bearer(&app, "/optional", &cognito_access("other-client"))
        .await
        .assert_refused(TokenRejection::WrongAudience);
    let id = provider
        .token()
        .without_claim("aud")
        .claim("aud", json!("app-client"))
        .claim("token_use", json!("id"))
        .sign();
    bearer(&app, "/optional", &id)
        .await
        .assert_refused(TokenRejection::WrongTokenType);
}

#[tokio::test]
async fn cached_token_is_never_served_after_expiry() {
    let h = harness().await;
    let token = h
        .provider
        .token()
        .email("c@example.com")
        .expires_in(120)
        .sign();
    assert_eq!(bearer(&h.app, "/me", &token).await.status, StatusCode::OK);
    assert_eq!(bearer(&h.app, "/me", &token).await.status, StatusCode::OK);
    // Past exp and past the 60 s leeway.
    h.provider.clock().advance_secs(181);
    bearer(&h.app, "/me", &token)
        .await
        .assert_refused(TokenRejection::Expired);
}

#[tokio::test]
async fn invalid_configuration_names_the_key() {
    let provider = MockProvider::start().await.unwrap();
    let no_aud = IssuerConfig::new(provider.issuer());
    let e = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), no_aud)])).unwrap_err();
    assert!(
        e.message().contains("issuers.main.audiences"),
        "{}",
        e.message()
    );
    let short = IssuerConfig::new("https://x.test")
        .with_audience("a")
        .with_algorithms([Algorithm::HS256])
        .with_hmac_secret("too-short");
    let e = TokenVerifier::new(VerifierConfig::new([("h".to_owned(), short)])).unwrap_err();
    assert!(
        e.message().contains("issuers.h.hmac_secret") && e.message().contains("32"),
        "{}",
        e.message()
    );
    let two = issuer_config(&provider)
        .with_jwks_url(provider.jwks_url())
        .with_discovery_url(provider.discovery_url());
    let e = TokenVerifier::new(VerifierConfig::new([("t".to_owned(), two)])).unwrap_err();
    assert!(e.message().contains("only one of"), "{}", e.message());
}

#[tokio::test]
async fn hmac_issuer_accepts_its_own_tokens() {
    let secret = "0123456789abcdef0123456789abcdef";
    let issuer = IssuerConfig::new("https://internal.test")
        .with_audience("svc")
        .with_algorithms([Algorithm::HS256])
        .with_hmac_secret(secret);
    let verifier =
        TokenVerifier::new(VerifierConfig::new([("internal".to_owned(), issuer)])).unwrap();
    let app = app(verifier, CredentialsConfig::default());
    let key =
        portcullis_core::mint::SigningKey::from_secret(Algorithm::HS256, "h", secret.as_bytes())
            .unwrap();
    let token = key
        .sign(&json!({"iss": "https://internal.test", "aud": "svc", "sub": "worker", "exp": 4102444800u64}), None)
        .unwrap();
    assert_eq!(bearer(&app, "/optional", &token).await.body, "hello worker");
    let other =
        portcullis_core::mint::SigningKey::from_secret(Algorithm::HS256, "h", &[9u8; 32]).unwrap();
    let forged = other
        .sign(&json!({"iss": "https://internal.test", "aud": "svc", "sub": "worker", "exp": 4102444800u64}), None)
        .unwrap();
    bearer(&app, "/optional", &forged)
        .await
        .assert_refused(TokenRejection::BadSignature);
}

#[tokio::test]
async fn static_jwk_and_pem_keys_and_typed_claims() {
    let provider = MockProvider::start().await.unwrap();
    let es = provider.signing_key(Algorithm::ES256);
    let ed = provider.signing_key(Algorithm::EdDSA);
    let jwk_issuer = IssuerConfig::new(provider.issuer())
        .with_audience(provider.audience())
        .with_algorithms([Algorithm::ES256])
        .with_key(portcullis_core::config::StaticKey::jwk(
            es.public_jwk().unwrap(),
        ));
    let verifier = TokenVerifier::builder(VerifierConfig::new([("jwk".to_owned(), jwk_issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .unwrap();
    let token = provider
        .token()
        .algorithm(Algorithm::ES256)
        .claim("tenant", json!({"id": 7, "name": "acme"}))
        .sign();
    let p = verifier.verify(&token).await.unwrap();
    #[derive(serde::Deserialize)]
    struct Mine {
        tenant: Tenant,
    }
    #[derive(serde::Deserialize)]
    struct Tenant {
        id: u32,
        name: String,
    }
    let mine: Mine = p.claims_as().unwrap();
    assert_eq!((mine.tenant.id, mine.tenant.name.as_str()), (7, "acme"));
    assert_eq!(provider.jwks_fetches(), 0, "static keys need no fetch");
    // An EdDSA token is not allowed for this issuer.
    let e = verifier
        .verify(&provider.token().algorithm(Algorithm::EdDSA).sign())
        .await
        .unwrap_err();
    assert_eq!(e.rejection(), Some(TokenRejection::DisallowedAlgorithm));

    let pem_issuer = IssuerConfig::new(provider.issuer())
        .with_audience(provider.audience())
        .with_algorithms([Algorithm::EdDSA])
        .with_key(portcullis_core::config::StaticKey::pem(
            Some(ed.kid().to_owned()),
            ed.public_pem().unwrap(),
        ));
    let verifier = TokenVerifier::builder(VerifierConfig::new([("pem".to_owned(), pem_issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .unwrap();
    let p = verifier
        .verify(
            &provider
                .token()
                .algorithm(Algorithm::EdDSA)
                .subject("ed")
                .sign(),
        )
        .await
        .unwrap();
    assert_eq!(p.user_id(), "ed");
}
