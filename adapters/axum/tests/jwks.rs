//! Key rotation, single-flight refetches, the stale limit and unreachable providers.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, CredentialsConfig, TokenRejection, TokenVerifier};
use portcullis_testing::{Fault, MockProvider};

use crate::support::*;

async fn warm(h: &Harness) {
    let token = h.provider.token().email("w@example.com").sign();
    assert_eq!(bearer(&h.app, "/me", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rotation_to_a_new_kid_costs_one_fetch() {
    let h = harness().await;
    warm(&h).await;
    let before = h.provider.jwks_fetches();
    h.provider.rotate_keys();
    // Past the minimum refetch interval since the first fetch.
    h.provider.clock().advance_secs(31);
    for _ in 0..5 {
        let token = h.provider.token().email("r@example.com").sign();
        assert_eq!(bearer(&h.app, "/me", &token).await.body, "r@example.com");
    }
    assert_eq!(h.provider.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn hundred_concurrent_unknown_kids_cause_one_fetch() {
    let h = harness().await;
    warm(&h).await;
    let before = h.provider.jwks_fetches();
    h.provider.clock().advance_secs(31);
    h.provider
        .set_jwks_fault(Some(Fault::Slow(Duration::from_millis(200))));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let app = h.app.clone();
        let token = h.provider.token().kid(format!("unknown-{i}")).sign();
        tasks.push(tokio::spawn(
            async move { bearer(&app, "/me", &token).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().assert_refused(TokenRejection::UnknownKey);
    }
    assert_eq!(h.provider.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn stale_keys_serve_within_the_limit_then_503() {
    let h = harness_with(|_, cfg| cfg.jwks.max_stale_secs = 600).await;
    warm(&h).await;
    h.provider.set_jwks_fault(Some(Fault::Status(500)));
    // Past the refresh time (max-age 300) but within the stale limit.
    h.provider.clock().advance_secs(400);
    let token = h.provider.token().email("s@example.com").sign();
    assert_eq!(bearer(&h.app, "/me", &token).await.body, "s@example.com");
    // Past refresh time + stale limit, with the provider still down: unavailable.
    h.provider.clock().advance_secs(600);
    let token = h.provider.token().email("s@example.com").sign();
    let r = bearer(&h.app, "/me", &token).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.www_authenticate(), "");
    // Once the provider is back, keys load again.
    h.provider.set_jwks_fault(None);
    h.provider.clock().advance_secs(2);
    let token = h.provider.token().email("s@example.com").sign();
    assert_eq!(bearer(&h.app, "/me", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_or_empty_jwks_is_unavailable_not_a_pass() {
    for fault in [Fault::Malformed, Fault::EmptyKeys, Fault::Status(404)] {
        let h = harness().await;
        h.provider.set_jwks_fault(Some(fault));
        let r = bearer(&h.app, "/me", &h.provider.token().sign()).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    }
}

#[tokio::test]
async fn slow_jwks_times_out_as_unavailable() {
    let h = harness_with(|_, cfg| cfg.jwks.timeout_ms = 300).await;
    h.provider
        .set_jwks_fault(Some(Fault::Slow(Duration::from_secs(3))));
    let started = std::time::Instant::now();
    let r = bearer(&h.app, "/me", &h.provider.token().sign()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unreachable_provider_is_unavailable() {
    let provider = MockProvider::start().await.unwrap();
    let token = provider.token().sign();
    let issuer = IssuerConfig::new(provider.issuer())
        .with_audience(provider.audience())
        .with_algorithms([Algorithm::RS256]);
    let verifier = TokenVerifier::builder(VerifierConfig::new([("gone".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .unwrap();
    provider.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let app = app(verifier, CredentialsConfig::default());
    let r = bearer(&app, "/me", &token).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert!(r.body.contains("temporarily_unavailable"));
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let real = MockProvider::start().await.unwrap();
    let other = MockProvider::start().await.unwrap();
    // Trust `real` but point discovery at `other`'s document (mix-up).
    let issuer = issuer_config(&real).with_discovery_url(other.discovery_url());
    let verifier = TokenVerifier::builder(VerifierConfig::new([("m".to_owned(), issuer)]))
        .clock(Arc::new(real.clock()))
        .build()
        .unwrap();
    let app = app(verifier, CredentialsConfig::default());
    let r = bearer(&app, "/me", &real.token().sign()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(other.jwks_fetches(), 0);
}

#[tokio::test]
async fn keys_refresh_in_the_background_per_cache_control() {
    let provider = MockProvider::start().await.unwrap();
    provider.set_jwks_max_age(Some(1));
    let mut cfg = VerifierConfig::new([("m".to_owned(), issuer_config(&provider))]);
    cfg.jwks.min_refresh_secs = 1;
    // The system clock: the background task waits in real time.
    let verifier = TokenVerifier::new(cfg).unwrap();
    verifier.warm_up().await.unwrap();
    assert_eq!(provider.jwks_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let fetches = provider.jwks_fetches();
    assert!(fetches >= 2, "no background refresh ({fetches} fetches)");
    // A rotated key is then known without any request having asked for it.
    provider.rotate_keys();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let app = app(verifier, CredentialsConfig::default());
    let before = provider.jwks_fetches();
    let r = bearer(
        &app,
        "/me",
        &provider.token().email("bg@example.com").sign(),
    )
    .await;
    assert_eq!(r.body, "bg@example.com");
    assert_eq!(
        provider.jwks_fetches(),
        before,
        "the request needed no fetch"
    );
}

#[tokio::test]
async fn oversized_jwks_response_is_refused() {
    // A key server answering far more than the configured limit.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let big = format!("{{\"keys\":[],\"padding\":\"{}\"}}", "x".repeat(64 * 1024));
    let server = axum::Router::new().route("/jwks", axum::routing::get(move || async move { big }));
    let task = tokio::spawn(async move { axum::serve(listener, server).await });
    let provider = MockProvider::start().await.unwrap();
    let issuer = issuer_config(&provider).with_jwks_url(format!("http://{addr}/jwks"));
    let mut cfg = VerifierConfig::new([("m".to_owned(), issuer)]);
    cfg.jwks.max_response_bytes = 16 * 1024;
    let verifier = verifier_on_clock_of(cfg, &provider);
    let e = verifier.warm_up().await.unwrap_err();
    assert_eq!(e.kind(), portcullis_core::ErrorKind::Unavailable);
    assert!(e.to_string().contains("too large"), "{e}");
    task.abort();
}
