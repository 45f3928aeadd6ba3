//! What a capability check costs on each store.
//!
//! `Capabilities::require` for an authenticated user whose capabilities are
//! stored (a) in memory, (b) in the user file, (c) in Redis (a real
//! `redis-server` started on a random loopback port), next to the pure
//! bitset check on the precomputed closure. Every Redis-backed check reads
//! Redis (no local cache), so that a removal is in force on every replica at
//! once: the difference between (c) and (a) is the round trip.
//!
//! Run with `cargo bench -p portcullis-capabilities --bench stores`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, FileStore, MemoryStore, RedisConfig, RedisStore,
};
use portcullis_core::capabilities::{CapabilitiesConfig, CapabilityGraph};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::mint::SigningKey;
use portcullis_core::{
    Algorithm, Authenticated, Authenticator, CredentialsConfig, Secret, TokenVerifier,
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

criterion_group!(benches, bench);
criterion_main!(benches);
