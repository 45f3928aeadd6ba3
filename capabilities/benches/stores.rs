//! What a capability check costs on each store.
//!
//! `Capabilities::require` for an authenticated user whose capabilities are
//! stored (a) in memory, (b) in the user file, (c) in Redis (a real
//! `redis-server` started on a random loopback port), next to the pure
//! bitset check on the precomputed closure. Every Redis-backed check reads
//! Redis (no local cache), so that a removal is in force on every replica at
//! once: the difference between (c) and (a) is the round trip.
//!
//! `verify`: what the revocation check adds to verifying a service token
//! (the path every request with one takes): a `TokenVerifier` over the
//! service issuer without the check, and with it over each store, with
//! nothing revoked and with other tokens revoked. Verified tokens are cached,
//! so this is a cache hit plus the check: the memory and file stores answer
//! without a lock while nothing is revoked, Redis with one `EXISTS`.
//!
//! Run with `cargo bench -p portcullis-capabilities --bench stores`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, FileStore, MemoryStore, RedisConfig, RedisStore,
    RevocationStore,
};
use portcullis_core::capabilities::{CapabilitiesConfig, CapabilityGraph};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::dangerous::{authenticated_unverified, principal_from_unverified_claims};
use portcullis_core::mint::SigningKey;
use portcullis_core::{
    Algorithm, Authenticated, Authenticator, CredentialsConfig, RawToken, Secret, TokenVerifier,
};
use portcullis_testing::RedisServer;
use tokio::runtime::Runtime;

const SECRET: &str = "bench-only secret key, 32 bytes or more";
const USER: &str = "accountant@example.com";

fn config() -> CapabilitiesConfig {
    CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("moderate", vec!["read", "write"]),
        ("announce", vec!["read", "write"]),
        ("user_management", vec![]),
    ])
    .with_auto_admin(true)
    .with_default_capabilities(["read"])
}

/// An authenticated caller, obtained the way a request gets one.
async fn caller() -> Authenticated {
    let issuer = IssuerConfig::new("https://id.bench")
        .with_audience("api")
        .with_algorithms([Algorithm::HS256])
        .with_hmac_secret(SECRET);
    let verifier = TokenVerifier::new(VerifierConfig::new([("bench".to_owned(), issuer)])).unwrap();
    let key = SigningKey::from_secret(Algorithm::HS256, "k", SECRET.as_bytes()).unwrap();
    let token = key
        .sign(
            &serde_json::json!({"iss": "https://id.bench", "aud": "api", "sub": "u1", "email": USER, "email_verified": true, "exp": 4102444800u64}),
            None,
        )
        .unwrap();
    let auth = Authenticator::new(verifier, CredentialsConfig::default());
    let header = format!("Bearer {token}");
    let headers: &[(&str, &str)] = &[("authorization", &header)];
    auth.authenticate(headers).await.unwrap().unwrap()
}

async fn service(store: Arc<dyn CapabilityStore>) -> Capabilities {
    store
        .update(USER, Change::Set(vec!["moderate".to_owned()]))
        .await
        .unwrap();
    Capabilities::builder(config(), store, Secret::new(SECRET))
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let who = rt.block_on(caller());
    let memory = rt.block_on(service(Arc::new(MemoryStore::new())));
    let file = rt.block_on(async {
        service(Arc::new(
            FileStore::open(dir.path().join("caps.yaml")).await.unwrap(),
        ))
        .await
    });
    let redis_caps = rt.block_on(async {
        let url = redis.url();
        service(Arc::new(
            RedisStore::connect(RedisConfig::new(url)).await.unwrap(),
        ))
        .await
    });

    let mut g = c.benchmark_group("require");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let graph = CapabilityGraph::new(&config()).unwrap();
    let set = graph.expand(["moderate"]).set;
    let write = graph.id("write").unwrap();
    g.bench_function("bitset_only", |b| {
        b.iter(|| std::hint::black_box(&set).contains(write))
    });
    for (name, caps) in [("memory", &memory), ("file", &file), ("redis", &redis_caps)] {
        assert!(rt.block_on(caps.require(Some(&who), "write")).is_ok());
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(caps.require(Some(&who), "write")).unwrap());
        });
    }
    g.finish();
}

const MANAGER: &str = "manager@example.com";

/// A service over `store` that keeps revocations in `revocations`, and a
/// service token it issued.
async fn issuing_service<S>(
    store: Arc<S>,
    revocations: Arc<dyn RevocationStore>,
) -> (Capabilities, String)
where
    S: CapabilityStore,
{
    store
        .update(
            MANAGER,
            Change::Set(vec!["user_management".to_owned(), "write".to_owned()]),
        )
        .await
        .unwrap();
    store
        .update("bot@service", Change::Set(vec!["write".to_owned()]))
        .await
        .unwrap();
    let caps = Capabilities::builder(config(), store, Secret::new(SECRET))
        .revocations(revocations)
        .build()
        .unwrap();
    let serde_json::Value::Object(claims) = serde_json::json!({"sub": MANAGER, "email": MANAGER})
    else {
        unreachable!()
    };
    let manager = authenticated_unverified(Arc::new(
        principal_from_unverified_claims(
            "https://id.bench",
            claims,
            RawToken::new(""),
            4_102_444_800,
        )
        .unwrap(),
    ));
    let reply = caps
        .issue_service_token(Some(&manager), Some("bot@service"))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let token = body["service_token"].as_str().unwrap().to_owned();
    (caps, token)
}

/// A verifier over the service issuer, with its revocation check or without.
fn verifier(caps: &Capabilities, with_check: bool) -> TokenVerifier {
    let mut issuer = caps.service_issuer_config();
    if !with_check {
        issuer.revocations = None;
    }
    TokenVerifier::new(VerifierConfig::new([("service".to_owned(), issuer)])).unwrap()
}

fn bench_verify(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let services: Vec<(&str, Capabilities, String, Arc<dyn RevocationStore>)> =
        rt.block_on(async {
            let memory = Arc::new(MemoryStore::new());
            let file = Arc::new(FileStore::open(dir.path().join("caps.yaml")).await.unwrap());
            let redis = Arc::new(
                RedisStore::connect(RedisConfig::new(redis.url()))
                    .await
                    .unwrap(),
            );
            let mut out = Vec::new();
            let (caps, token) = issuing_service(memory.clone(), memory.clone()).await;
            out.push(("memory", caps, token, memory as Arc<dyn RevocationStore>));
            let (caps, token) = issuing_service(file.clone(), file.clone()).await;
            out.push(("file", caps, token, file as Arc<dyn RevocationStore>));
            let (caps, token) = issuing_service(redis.clone(), redis.clone()).await;
            out.push(("redis", caps, token, redis as Arc<dyn RevocationStore>));
            out
        });

    let mut g = c.benchmark_group("verify");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, caps, token, revocations) in &services {
        let without = verifier(caps, false);
        let with = verifier(caps, true);
        assert!(rt.block_on(with.verify(token)).is_ok());
        g.bench_function(format!("{name}/without_check"), |b| {
            b.iter(|| rt.block_on(without.verify(token)).unwrap());
        });
        g.bench_function(format!("{name}/with_check_none_revoked"), |b| {
            b.iter(|| rt.block_on(with.verify(token)).unwrap());
        });
        // Other tokens revoked: the check now looks the id up.
        rt.block_on(revocations.revoke("another-token", 4_102_444_800))
            .unwrap();
        g.bench_function(format!("{name}/with_check_others_revoked"), |b| {
            b.iter(|| rt.block_on(with.verify(token)).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_verify);
criterion_main!(benches);
